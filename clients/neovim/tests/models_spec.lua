-- Two-phase results with the tiny random-weight models (tests/tiny_models.py): the
-- first-stage list at once, then the reranked list via semcode/searchRefined; related
-- code by stored vectors; the real telescope and fzf-lua pickers showing the reranked list.
local dir = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2))
local H = dofile(dir .. "/helpers.lua")
local semcode = require("semcode")
local search = require("semcode.search")

local python = vim.env.SEMCODE_PYTHON or (H.repo_root .. "/.venv/bin/python")
local model_dir = (vim.env.SEMCODE_TEST_TMP or vim.fn.tempname()) .. "/tiny-models"
local res = vim.system({ python, H.repo_root .. "/tests/tiny_models.py", "--json", model_dir }, { text = true }):wait(120000)
if res.code ~= 0 then
  -- Not a skip: the models are written by the repository's own script; if it fails, the
  -- suite cannot do its job here and that is a failure.
  H.test("tests/tiny_models.py writes the tiny models", function()
    error("tiny_models.py failed: " .. (res.stderr or ""))
  end)
  H.finish()
end
local models = vim.json.decode(res.stdout)

local ws = H.workspace({
  ["tokens.py"] = "def refresh_expired_token(session):\n    return session.renew()\n\n\ndef revoke_token(session):\n    session.token = None\n",
  ["http.py"] = "def retry_request(request, attempts=3):\n    for _ in range(attempts):\n        pass\n\n\ndef send_request(request):\n    return request\n",
  ["pool.py"] = "def open_connection_pool(url):\n    return [url]\n\n\ndef close_pool(pool):\n    pool.clear()\n",
})
H.capture_notify()

local function status()
  local c = require("semcode.client").get()
  if not c or not c.initialized then
    return nil
  end
  local result
  require("semcode.client").command(c, "semcode.status", {}, function(_, r)
    result = r
  end)
  vim.wait(5000, function()
    return result ~= nil
  end, 20)
  return result
end

H.test("setup with tiny models: embedder and reranker load, every chunk embedded", function()
  H.truthy(semcode.setup({
    cmd = H.server_cmd(),
    init_options = {
      embeddingModel = models.embedder,
      rerankerModel = models.reranker,
      indexDir = vim.fn.tempname() .. "-index",
      rerankBudgetMs = 60000,
    },
  }), "setup")
  vim.cmd.edit(ws .. "/tokens.py")
  local st = H.wait(90000, function()
    local s = status()
    if s and s.state == "error" then
      error("server state error:\n" .. require("semcode.status").describe(s))
    end
    local w = s and s.workspaces and s.workspaces[1]
    -- The server loads the reranker in the background after `initialized`: "loading"
    -- is a passing state, so wait it out rather than race it.
    return s and s.state == "ready" and w and w.chunks > 0 and w.pendingEmbeddings == 0
      and s.models.reranker.state ~= "loading" and s
  end, "index ready, embedded, reranker no longer loading")
  H.eq("loaded", st.models.embedder.state, "embedder")
  H.truthy(st.models.reranker.state == "loaded" or st.models.reranker.state == "not loaded",
    "reranker usable: " .. tostring(st.models.reranker.state))
end)

H.test("two phases: first-stage list, then the reranked list for the same searchId", function()
  local updates = {}
  local s = search.session({
    debounce_ms = 0,
    on_update = function(state)
      updates[#updates + 1] = state
    end,
  })
  s:set_query("refresh an expired token")
  H.wait(60000, function()
    return #updates >= 2 or (updates[1] and not updates[1].pending)
  end, "both phases")
  s:close()
  local first, refined = updates[1], updates[2]
  H.eq(false, first.reranked, "first phase is the fused list")
  H.eq(true, first.pending, "rerankPending")
  H.truthy(#first.items > 0, "first-stage items")
  H.truthy(refined, "a refined update")
  H.eq(true, refined.reranked, "second phase reranked" .. (refined.error and (": " .. refined.error) or ""))
  H.eq(first.search_id, refined.search_id, "same searchId")
  H.truthy(#refined.items > 0, "refined items")
  for i, it in ipairs(refined.items) do
    H.truthy(it.stages and it.stages.rerank, "item " .. i .. " has a rerank stage")
  end
end)

H.test("related: code similar to the symbol under the cursor", function()
  vim.cmd.edit(ws .. "/tokens.py")
  vim.api.nvim_win_set_cursor(0, { 1, 5 })
  local got
  search.related({}, function(state)
    got = state
  end)
  H.wait(20000, function()
    return got
  end, "related answer")
  H.eq(nil, got.error, "no error")
  H.truthy(#got.items > 0, "items: " .. vim.inspect(got.notices))
  for _, it in ipairs(got.items) do
    H.truthy(it.name ~= "refresh_expired_token", "the symbol itself is excluded")
  end
end)

--- Record every list a live session hands its picker (first stage, then reranked).
local function record_updates()
  local states = {}
  local real = search.session
  search.session = function(opts)
    local on_update = opts.on_update
    opts.on_update = function(state)
      states[#states + 1] = state
      on_update(state)
    end
    return real(opts)
  end
  return states, function()
    search.session = real
  end
end

local function names_of(items)
  return vim.tbl_map(function(it)
    return it.name
  end, items)
end

H.test("telescope (real plugin): first stage shown, then swapped for the reranked list; <CR> jumps to its top", function()
  H.use_plugins("plenary.nvim", "telescope.nvim")
  local states, restore = record_updates()
  vim.cmd.enew()
  local picker = require("semcode.pickers.telescope").search({ debounce_ms = 0 })
  restore()
  H.type("retry a failed request")
  H.wait(60000, function()
    return H.telescope_title(picker):find("(reranked)", 1, true)
  end, "reranked title", function()
    return H.telescope_title(picker)
  end)
  local first, final = states[1], states[#states]
  H.truthy(first and first.pending and not first.reranked, "a first-stage list came first")
  H.eq(true, final.reranked, "then the reranked list")
  H.truthy(final.items[1].stages.rerank and final.items[1].stages.rerank.rank == 1, "top entry is rerank #1")
  local shown = vim.tbl_map(function(line)
    return line:match("^(%S+)")
  end, H.telescope_shown(picker))
  H.eq(names_of(final.items), shown, "telescope shows the reranked list in its order")
  local top = final.items[1]
  H.type("<CR>")
  H.wait(5000, function()
    return vim.api.nvim_buf_get_name(0) == vim.uri_to_fname(top.uri)
  end, "jump to the top result")
  H.eq({ top.selectionRange.start.line + 1, top.selectionRange.start.character },
    vim.api.nvim_win_get_cursor(0), "cursor on its name")
  vim.cmd("stopinsert")
end)

H.test("fzf-lua (real plugin, real fzf): the reranked list in its order; <CR> jumps to its top", function()
  H.use_plugins("fzf-lua")
  local query = "open a connection pool"
  -- A loaded machine may rerank slowly: wait for the reranked list, however long.
  require("semcode.config").options.rerank_wait_ms = 60000
  local reranked
  search.run(query, {}, function(state)
    reranked = state
  end)
  H.wait(60000, function()
    return reranked
  end, "a reranked search")
  H.eq(true, reranked.reranked, "reranked")
  vim.cmd.enew()
  vim.cmd.cd(ws) -- fzf-lua shows paths relative to the cwd
  vim.o.columns, vim.o.lines = 160, 40 -- room for whole lines in fzf's window
  local chan = H.fzf_open_and_type(query, 5000)
  local shown = H.fzf_names(#reranked.items, 60000, names_of(reranked.items))
  H.eq(names_of(reranked.items), shown, "fzf shows the reranked list in its order")
  local top = reranked.items[1]
  vim.api.nvim_chan_send(chan, "\r")
  H.wait(5000, function()
    return vim.api.nvim_buf_get_name(0) == vim.uri_to_fname(top.uri)
  end, "jump to the top result")
  H.eq({ top.selectionRange.start.line + 1, top.selectionRange.start.character },
    vim.api.nvim_win_get_cursor(0), "cursor on its name")
end)

H.finish()
