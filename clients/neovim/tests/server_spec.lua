-- Against the real `semcode serve` (lexical only: models off): attach, search round
-- trip, the vim.ui.select picker landing on the symbol, unsaved edits, workspace/symbol,
-- :checkhealth, :Semcode status, progress, and the real telescope and fzf-lua pickers.
local dir = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2))
local H = dofile(dir .. "/helpers.lua")
local semcode = require("semcode")
local search = require("semcode.search")

local cmd = H.server_cmd()
local ws = H.workspace({
  ["src/auth/tokens.py"] = table.concat({
    "import time",
    "",
    "",
    "def refresh_expired_token(session):",
    '    """Refresh the access token when it has expired."""',
    "    if session.expires_at < time.time():",
    "        session.token = session.renew()",
    "    return session.token",
    "",
  }, "\n"),
  ["src/http/client.py"] = table.concat({
    "class HttpClient:",
    '    """Sends requests and retries failed ones."""',
    "",
    "    def retry_request(self, request, attempts=3):",
    "        for _ in range(attempts):",
    "            response = self.send(request)",
    "            if response.ok:",
    "                return response",
    "        return None",
    "",
  }, "\n"),
  ["src/db/pool.py"] = "def open_connection_pool(url, size=4):\n    return [url] * size\n",
})
local index_dir = vim.fn.tempname() .. "-index"

local progress_events = {}
vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(ev)
    progress_events[#progress_events + 1] = ev.data.params.value
  end,
})

local notes = H.capture_notify()

local function client()
  return require("semcode.client").get()
end

--- Search until `pred(items)` holds (the index fills in the background).
local function search_until(query, pred, ms)
  local found
  H.wait(ms or 60000, function()
    local state
    search.run(query, { wait_ms = 0 }, function(s)
      state = s
    end)
    vim.wait(5000, function()
      return state ~= nil
    end, 20)
    if state and not state.error and pred(state.items) then
      found = state
      return true
    end
    vim.wait(200)
    return false
  end, ("search %q"):format(query))
  return found
end

local function by_name(items, name)
  for i, it in ipairs(items) do
    if it.name == name then
      return it, i
    end
  end
end

H.test("setup() and attach: one server for the workspace root", function()
  H.truthy(semcode.setup({
    cmd = cmd,
    init_options = { embeddingModel = "off", rerankerModel = "off", indexDir = index_dir },
  }), "setup")
  vim.cmd.edit(ws .. "/src/auth/tokens.py")
  local c = H.wait(30000, function()
    local c = client()
    return c and c.initialized and c
  end, "client initialized")
  H.eq(ws, c.root_dir, "root_dir")
  H.eq(1, c.server_capabilities.experimental.semcode.protocolVersion, "protocol version")
  vim.cmd.edit(ws .. "/src/http/client.py")
  H.eq(1, #vim.lsp.get_clients({ name = "semcode" }), "one client for both files")
  H.eq(1, #vim.lsp.get_clients({ name = "semcode", bufnr = 0 }), "second buffer attached")
end)

H.test("search round trip: the symbol, its range, first stage only", function()
  local state = search_until("refresh expired token", function(items)
    return items[1] and items[1].name == "refresh_expired_token"
  end)
  local it = state.items[1]
  H.eq("src/auth/tokens.py", it.path, "path")
  H.eq(3, it.selectionRange.start.line, "selectionRange line (0-based)")
  H.eq(false, state.reranked, "not reranked (reranker off)")
  H.eq(false, state.pending, "nothing pending")
end)

H.test("vim.ui.select fallback: :Semcode search jumps to the right file and line", function()
  vim.cmd.enew()
  local prompted, offered
  vim.ui.input = function(opts, on_confirm)
    prompted = opts.prompt
    on_confirm("retry failed requests")
  end
  vim.ui.select = function(items, opts, on_choice)
    offered = vim.tbl_map(opts.format_item, items)
    on_choice(by_name(items, "retry_request"))
  end
  vim.cmd("Semcode search")
  H.wait(10000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/src/http/client.py"
  end, "jump to client.py")
  H.eq("semcode search: ", prompted, "input prompt")
  H.truthy(offered[1]:find("retry_request", 1, true) or offered[2]:find("retry_request", 1, true),
    "offered list shows the name")
  H.eq({ 4, 8 }, vim.api.nvim_win_get_cursor(0), "cursor on `retry_request`")
end)

H.test("an unsaved edit is found by the next search", function()
  vim.cmd.edit(ws .. "/src/db/pool.py")
  vim.api.nvim_buf_set_lines(0, -1, -1, false, {
    "",
    "def compute_invoice_total_with_tax(lines, rate):",
    "    return sum(lines) * (1 + rate)",
  })
  H.eq(true, vim.bo.modified, "buffer modified, not written")
  local state = search_until("compute invoice total with tax", function(items)
    return by_name(items, "compute_invoice_total_with_tax") ~= nil
  end, 20000)
  local it = by_name(state.items, "compute_invoice_total_with_tax")
  H.eq("src/db/pool.py", it.path, "path")
  H.eq(3, it.selectionRange.start.line, "line of the unsaved def")
  local disk = table.concat(vim.fn.readfile(ws .. "/src/db/pool.py"), "\n")
  H.eq(nil, disk:find("invoice", 1, true), "file on disk untouched")
end)

H.test("vim.lsp.buf.workspace_symbol() answers natural language", function()
  vim.fn.setqflist({})
  vim.lsp.buf.workspace_symbol("refresh expired token")
  local qf = H.wait(10000, function()
    local list = vim.fn.getqflist()
    return #list > 0 and list
  end, "quickfix list")
  H.truthy(qf[1].text:find("refresh_expired_token", 1, true), "first symbol: " .. qf[1].text)
  vim.cmd("cclose")
end)

H.test(":Semcode related without embeddings says why", function()
  vim.cmd.edit(ws .. "/src/auth/tokens.py")
  vim.api.nvim_win_set_cursor(0, { 4, 6 })
  local before = #notes
  vim.cmd("Semcode related")
  H.wait(10000, function()
    return #notes > before
  end, "a notice")
  local text = table.concat(vim.tbl_map(function(n) return n.msg end, vim.list_slice(notes, before + 1)), "\n")
  H.truthy(text:find("semcode", 1, true), "notice: " .. text)
end)

H.test(":Semcode status and the statusline component", function()
  local before = #notes
  vim.cmd("Semcode status")
  H.wait(10000, function()
    return #notes > before and notes[#notes].msg:find("protocol", 1, true)
  end, "status notification")
  local msg = notes[#notes].msg
  H.truthy(msg:find(ws .. ": 3 files", 1, true), "workspace line in: " .. msg)
  H.truthy(msg:find("embedder: off", 1, true), "embedder off in: " .. msg)
  H.truthy(semcode.status():match("^semcode: "), "statusline: " .. semcode.status())
end)

H.test("indexing progress arrives as $/progress (LspProgress)", function()
  local kinds = {}
  for _, v in ipairs(progress_events) do
    kinds[v.kind] = (kinds[v.kind] or 0) + 1
  end
  H.truthy(kinds.begin and kinds["end"], "begin and end seen: " .. vim.inspect(kinds))
  local titles = vim.tbl_map(function(v) return v.title end, vim.tbl_filter(function(v) return v.kind == "begin" end, progress_events))
  H.truthy(titles[1]:find("semcode: indexing", 1, true), "title: " .. tostring(titles[1]))
end)

H.test(":checkhealth semcode reports server, version, models, index and picker", function()
  vim.cmd("checkhealth semcode")
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), "\n")
  H.out("    | " .. text:gsub("\n", "\n    | "))
  for _, want in ipairs({ "server running", "protocol version 1", "embedder: off", "reranker: ",
    "index " .. ws .. ": 3 files", "picker: vim.ui.select" }) do
    H.truthy(text:find(want, 1, true), "health mentions " .. want)
  end
  H.eq(nil, text:find("ERROR", 1, true), "no errors")
  vim.cmd("bwipeout")
end)

--- The server's own order for `query` (names), to compare what pickers show with.
local function server_order(query)
  local state = search_until(query, function(items)
    return #items > 0
  end, 10000)
  return vim.tbl_map(function(it)
    return it.name
  end, state.items)
end

H.test("telescope (real plugin) against the real server: type, server order, <CR> lands on the symbol", function()
  H.use_plugins("plenary.nvim", "telescope.nvim")
  local query = "open a pool of database connections"
  local want = server_order(query)
  vim.cmd.enew()
  local picker = require("semcode.pickers.telescope").search({})
  H.type(query)
  H.wait(10000, function()
    return #H.telescope_shown(picker) == #want
  end, "results in picker")
  local names = vim.tbl_map(function(line)
    return line:match("^(%S+)")
  end, H.telescope_shown(picker))
  H.eq(want, names, "the server's order")
  -- select the pool entry (<C-n>/<C-p> move the selection), then <CR>
  local idx = H.truthy(select(2, by_name(vim.tbl_map(function(n) return { name = n } end, names),
    "open_connection_pool")), "pool entry shown")
  local step = picker.sorting_strategy == "ascending" and "<C-n>" or "<C-p>"
  H.type(string.rep(step, idx - 1) .. "<CR>")
  H.wait(5000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/src/db/pool.py"
  end, "jump to pool.py")
  H.eq({ 1, 4 }, vim.api.nvim_win_get_cursor(0), "cursor on open_connection_pool")
  vim.cmd("stopinsert")
end)

H.test("fzf-lua (real plugin, real fzf) against the real server: type, server order, <CR> lands on the symbol", function()
  H.use_plugins("fzf-lua")
  local query = "retry failed requests"
  local want = server_order(query)
  vim.cmd.enew()
  vim.cmd.cd(ws) -- fzf-lua shows paths relative to the cwd
  vim.o.columns, vim.o.lines = 160, 40 -- room for whole lines in fzf's window
  local chan = H.fzf_open_and_type(query, 5000)
  local shown = H.fzf_names(#want, 10000, want)
  H.eq(want, shown, "the server's order")
  local idx = H.truthy(select(2, by_name(vim.tbl_map(function(n) return { name = n } end, shown),
    "retry_request")), "retry_request shown")
  vim.api.nvim_chan_send(chan, string.rep("\14", idx - 1) .. "\r") -- <C-n>..., <CR>
  H.wait(5000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/src/http/client.py"
  end, "jump to client.py")
  H.eq({ 4, 8 }, vim.api.nvim_win_get_cursor(0), "cursor on retry_request")
end)

H.finish()
