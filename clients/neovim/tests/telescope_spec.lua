-- The telescope picker in the real, unmodified telescope.nvim (vendored, see
-- helpers.vendor_dir), driven by keys as a user would: type into the prompt, read what
-- the results window shows, <CR>/<C-v>/<C-t>/<C-c>. The server is a fake client here so
-- that the order, the two phases and the cancellations are exact; server_spec.lua and
-- models_spec.lua drive the same picker against the real server.
local dir = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2))
local H = dofile(dir .. "/helpers.lua")
H.use_plugins("plenary.nvim", "telescope.nvim")
local tel = require("semcode.pickers.telescope")

-- Natural-language hits whose names share nothing with the query.
local ws = H.workspace({
  ["src/auth.py"] = "import time\n\n\ndef renew_session(s):\n    return s\n",
  ["src/http.py"] = "class HttpClient:\n    def retry(self):\n        pass\n",
  ["src/pool.py"] = "def open_pool():\n    pass\n",
})
local function item(name, path, line, extra)
  local it = H.item(name, path, line, extra)
  it.uri = vim.uri_from_fname(ws .. "/" .. path)
  return it
end
local items = { item("renew_session", "src/auth.py", 3), item("retry", "src/http.py", 1, { kind = 6 }),
  item("open_pool", "src/pool.py", 0) }

--- The names shown, best first (the first word of each displayed line).
local function shown_names(picker)
  return vim.tbl_map(function(line)
    return line:match("^(%S+)")
  end, H.telescope_shown(picker))
end

--- A clean slate for the next test: no picker left open (an open prompt takes the keys),
--- normal mode, an empty buffer.
local function fresh()
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_valid(buf) and vim.bo[buf].filetype == "TelescopePrompt" then
      pcall(require("telescope.actions").close, buf)
    end
  end
  vim.cmd("stopinsert")
  vim.cmd.enew()
end

H.test("entry maker: location, whole-symbol preview range, display with highlights", function()
  local e = tel.make_entry(items[2], 2)
  H.eq(ws .. "/src/http.py", e.filename, "filename")
  H.eq({ 2, 5, 4, 2 }, { e.lnum, e.col, e.lnend, e.rank }, "lnum/col/lnend/rank")
  local text, hls = e.display(e)
  H.eq("retry  Method  src/http.py:2  def retry():", text, "display")
  H.eq({ { 0, 5 }, "TelescopeResultsIdentifier" }, hls[1], "name highlight")
  H.eq("src/http.py:2", text:sub(hls[3][1][1] + 1, hls[3][1][2]), "path highlight span")
end)

H.test("live picker: debounced search, server order kept, reranked list replaces it", function()
  local fake = H.fake_client()
  fresh()
  -- A debounce long enough that a loaded machine still types the whole query within it.
  local picker = tel.search({ client = fake, debounce_ms = 250 })
  H.eq("TelescopePrompt", vim.bo.filetype, "telescope's prompt has the focus")
  H.type("where do we refresh expired tokens")
  H.wait(2000, function()
    return #fake.requests == 1
  end, "one debounced request")
  vim.wait(100)
  H.eq(1, #fake.requests, "keystrokes coalesced into one request")
  H.eq("where do we refresh expired tokens", fake.requests[1].params.query, "query")
  fake:respond(1, nil, { searchId = "s1", items = items, reranked = false, rerankPending = true })
  -- telescope's own sorter would drop all three (no typed word in them); ours keeps them.
  H.wait(3000, function()
    return #H.telescope_shown(picker) == 3
  end, "first-stage results shown")
  H.eq({ "renew_session", "retry", "open_pool" }, shown_names(picker), "first-stage order")
  H.wait(1000, function()
    return H.telescope_title(picker):find("reranking", 1, true)
  end, "title says reranking")
  require("semcode.search").on_refined(nil, { searchId = "s1", items = { items[3], items[1], items[2] }, reranked = true })
  H.wait(3000, function()
    return shown_names(picker)[1] == "open_pool"
  end, "refined list shown")
  H.eq({ "open_pool", "renew_session", "retry" }, shown_names(picker), "reranked order")
  H.truthy(H.telescope_title(picker):find("(reranked)", 1, true), "title says reranked: " .. H.telescope_title(picker))
  H.eq("open_pool", require("telescope.actions.state").get_selected_entry().value.name, "the best is selected")

  -- typing on: the old (finished) search is not cancelled, a new one starts; typing again
  -- before it answers cancels it.
  H.type(" pool")
  H.wait(2000, function()
    return #fake.requests == 2
  end, "second request")
  H.type("s")
  H.wait(2000, function()
    return #fake.requests == 3
  end, "third request")
  H.eq({ 2 }, fake.cancelled, "in-flight request cancelled by the newer query")
  fresh()
end)

H.test("<CR>, <C-v> and <C-t> land on the symbol", function()
  local fake = H.fake_client()
  fresh()
  local picker = tel.search({ client = fake, debounce_ms = 0, query = "session renewal" })
  H.wait(2000, function()
    return #fake.requests == 1
  end, "default_text searched")
  fake:respond(1, nil, { searchId = "s2", items = items, rerankPending = false })
  H.wait(3000, function()
    return #H.telescope_shown(picker) == 3
  end, "results")
  H.type("<CR>")
  H.wait(2000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/src/auth.py"
  end, "jump to auth.py")
  H.eq({ 4, 4 }, vim.api.nvim_win_get_cursor(0), "cursor on the name")
  H.eq(false, vim.api.nvim_buf_is_valid(picker.prompt_bufnr), "picker closed")
  vim.cmd("stopinsert")

  local wins = #vim.api.nvim_tabpage_list_wins(0)
  picker = tel.search({ client = fake, debounce_ms = 0, query = "pool" })
  H.wait(2000, function()
    return #fake.requests == 2
  end, "request")
  fake:respond(2, nil, { searchId = "s3", items = { items[3] }, rerankPending = false })
  H.wait(3000, function()
    return #H.telescope_shown(picker) == 1
  end, "results")
  H.type("<C-v>")
  H.wait(2000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/src/pool.py"
  end, "file in split")
  H.eq(wins + 1, #vim.api.nvim_tabpage_list_wins(0), "a new split")
  vim.cmd("stopinsert")

  local tabs = #vim.api.nvim_list_tabpages()
  picker = tel.search({ client = fake, debounce_ms = 0, query = "retry" })
  H.wait(2000, function()
    return #fake.requests == 3
  end, "request")
  fake:respond(3, nil, { searchId = "s4", items = { items[2] }, rerankPending = false })
  H.wait(3000, function()
    return #H.telescope_shown(picker) == 1
  end, "results")
  H.type("<C-t>")
  H.wait(2000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/src/http.py"
  end, "file in tab")
  H.eq(tabs + 1, #vim.api.nvim_list_tabpages(), "a new tab")
  H.eq(2, vim.api.nvim_win_get_cursor(0)[1], "line")
  vim.cmd("stopinsert")
end)

H.test("closing the picker (<C-c>) cancels the in-flight search", function()
  local fake = H.fake_client()
  fresh()
  tel.search({ client = fake, debounce_ms = 0, query = "x" })
  H.wait(2000, function()
    return #fake.requests == 1
  end, "request")
  H.type("<C-c>")
  H.wait(2000, function()
    return #fake.cancelled == 1
  end, "cancelled")
  H.eq({ 1 }, fake.cancelled, "cancelled request")
  vim.cmd("stopinsert")
end)

H.test("a fixed list (related) in telescope: server order, <CR> jumps", function()
  fresh()
  tel.list({ title = "semcode: related", items = { items[2], items[3] } })
  local picker = require("telescope.actions.state").get_current_picker(vim.api.nvim_get_current_buf())
  H.wait(3000, function()
    return #H.telescope_shown(picker) == 2
  end, "list shown")
  H.eq({ "retry", "open_pool" }, shown_names(picker), "order")
  H.type("<CR>")
  H.wait(2000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/src/http.py"
  end, "jump")
  H.eq({ 2, 4 }, vim.api.nvim_win_get_cursor(0), "cursor on retry")
  vim.cmd("stopinsert")
end)

H.test("the extension: :Telescope semcode opens the live picker; auto backend is telescope", function()
  require("telescope").load_extension("semcode")
  local ext = require("telescope").extensions.semcode
  H.eq("function", type(ext.semcode), "semcode export")
  H.eq("function", type(ext.related), "related export")
  H.eq("telescope", require("semcode.pickers").backend("auto"), "auto picks telescope when present")
  fresh()
  vim.cmd("Telescope semcode")
  H.wait(2000, function()
    return vim.bo.filetype == "TelescopePrompt"
  end, "prompt open")
  local picker = require("telescope.actions.state").get_current_picker(vim.api.nvim_get_current_buf())
  H.eq("semcode: search code by meaning", picker.prompt_title, "prompt title")
  fresh()
end)

H.finish()
