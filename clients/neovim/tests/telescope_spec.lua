-- The telescope picker's finder, sorter, entry maker and actions, against a stand-in of
-- telescope's documented API (tests/telescope_stub.lua; telescope itself cannot be
-- installed here). The server is a fake client; server_spec.lua drives a real one.
local dir = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2))
local H = dofile(dir .. "/helpers.lua")
local T = dofile(dir .. "/telescope_stub.lua")
local tel = require("semcode.pickers.telescope")

-- Natural-language hits whose names share nothing with the query.
local ws = H.workspace({
  ["src/auth.py"] = "import time\n\n\ndef renew_session(s):\n    return s\n",
  ["src/http.py"] = "class HttpClient:\n    def retry(self):\n        pass\n",
  ["src/pool.py"] = "def open_pool():\n    pass\n",
})
local function item(name, path, line)
  local it = H.item(name, path, line)
  it.uri = vim.uri_from_fname(ws .. "/" .. path)
  return it
end
local items = { item("renew_session", "src/auth.py", 3), item("retry", "src/http.py", 1), item("open_pool", "src/pool.py", 0) }
local function names(picker)
  return vim.tbl_map(function(e)
    return e.value.name
  end, picker.results)
end

H.test("telescope's own fuzzy sorter would hide natural-language hits (why we replace it)", function()
  local kept = 0
  local sorter = T.fuzzy_sorter()
  for i, it in ipairs(items) do
    sorter:score("where do we refresh expired tokens", tel.make_entry(it, i), function()
      kept = kept + 1
    end, function() end)
  end
  H.eq(0, kept, "entries kept by fuzzy sorter")
end)

H.test("entry maker: location, whole-symbol preview range, display with highlights", function()
  local e = tel.make_entry(items[2], 2)
  H.eq(ws .. "/src/http.py", e.filename, "filename")
  H.eq({ 2, 5, 4, 2 }, { e.lnum, e.col, e.lnend, e.rank }, "lnum/col/lnend/rank")
  local text, hls = e.display(e)
  H.eq("retry  Method  src/http.py:2  def retry():", text:gsub("Function", "Method"), "display")
  H.eq({ { 0, 5 }, "TelescopeResultsIdentifier" }, hls[1], "name highlight")
  H.eq("src/http.py:2", text:sub(hls[3][1][1] + 1, hls[3][1][2]), "path highlight span")
end)

H.test("live picker: debounced search, server order kept, reranked list replaces it", function()
  local fake = H.fake_client()
  local picker = tel.search({ client = fake, debounce_ms = 30 })
  H.eq("grep_previewer", picker.previewer.name, "previewer")
  picker:type("w")
  picker:type("where do we refresh expired tokens")
  H.wait(1000, function()
    return #fake.requests == 1
  end, "one debounced request")
  H.eq("where do we refresh expired tokens", fake.requests[1].params.query, "query")
  fake:respond(1, nil, { searchId = "s1", items = items, reranked = false, rerankPending = true })
  H.wait(1000, function()
    return #picker.results == 3
  end, "first-stage results shown")
  H.eq({ "renew_session", "retry", "open_pool" }, names(picker), "first-stage order")
  H.truthy(picker.results_border.title:find("reranking", 1, true), "title says reranking")
  require("semcode.search").on_refined(nil, { searchId = "s1", items = { items[3], items[1], items[2] }, reranked = true })
  H.wait(1000, function()
    return picker.results[1].value.name == "open_pool"
  end, "refined list shown")
  H.eq({ "open_pool", "renew_session", "retry" }, names(picker), "reranked order")
  H.truthy(picker.results_border.title:find("(reranked)", 1, true), "title says reranked")

  -- typing on supersedes: the old (finished) search is not cancelled, a new one starts
  picker:type("pool")
  H.wait(1000, function()
    return #fake.requests == 2
  end, "second request")
  picker:type("pool connections")
  H.eq({ 2 }, fake.cancelled, "in-flight request cancelled by the newer query")
  picker:close()
end)

H.test("<CR>, split and tab actions land on the symbol", function()
  local fake = H.fake_client()
  local picker = tel.search({ client = fake, debounce_ms = 0, query = "session renewal" })
  H.eq(1, #fake.requests, "default_text searched at once")
  fake:respond(1, nil, { searchId = "s2", items = items, rerankPending = false })
  H.wait(1000, function()
    return #picker.results == 3
  end, "results")
  T.press("select_default")
  H.eq(ws .. "/src/auth.py", vim.api.nvim_buf_get_name(0), "file")
  H.eq({ 4, 4 }, vim.api.nvim_win_get_cursor(0), "cursor on the name")
  H.eq(true, picker.closed, "picker closed")

  local wins = #vim.api.nvim_tabpage_list_wins(0)
  picker = tel.search({ client = fake, debounce_ms = 0, query = "pool" })
  fake:respond(2, nil, { searchId = "s3", items = { items[3] }, rerankPending = false })
  H.wait(1000, function()
    return #picker.results == 1
  end, "results")
  T.press("select_vertical")
  H.eq(wins + 1, #vim.api.nvim_tabpage_list_wins(0), "a new split")
  H.eq(ws .. "/src/pool.py", vim.api.nvim_buf_get_name(0), "file in split")

  local tabs = #vim.api.nvim_list_tabpages()
  picker = tel.search({ client = fake, debounce_ms = 0, query = "retry" })
  fake:respond(3, nil, { searchId = "s4", items = { items[2] }, rerankPending = false })
  H.wait(1000, function()
    return #picker.results == 1
  end, "results")
  T.press("select_tab")
  H.eq(tabs + 1, #vim.api.nvim_list_tabpages(), "a new tab")
  H.eq({ ws .. "/src/http.py", 2 }, { vim.api.nvim_buf_get_name(0), vim.api.nvim_win_get_cursor(0)[1] }, "tab target")
end)

H.test("closing the picker cancels the in-flight search", function()
  local fake = H.fake_client()
  local picker = tel.search({ client = fake, debounce_ms = 0, query = "x" })
  picker:close()
  H.eq({ 1 }, fake.cancelled, "cancelled")
end)

H.test("extension registers :Telescope semcode and related", function()
  local ext = dofile(H.plugin_dir .. "/lua/telescope/_extensions/semcode.lua")
  H.eq("function", type(ext.exports.semcode), "semcode export")
  H.eq("function", type(ext.exports.related), "related export")
  H.eq("telescope", require("semcode.pickers").backend("auto"), "auto picks telescope when present")
end)

H.finish()
