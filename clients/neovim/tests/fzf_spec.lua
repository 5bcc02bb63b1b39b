-- The fzf-lua picker in the real, unmodified fzf-lua (vendored, see helpers.vendor_dir)
-- running the real `fzf` (Debian package) in Neovim's terminal: type the query into fzf,
-- read fzf's screen, press Enter. The server is a fake client so that the two phases
-- are exact; server_spec.lua drives the same picker against the real server.
local dir = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2))
local H = dofile(dir .. "/helpers.lua")
H.use_plugins("fzf-lua")

local ws = H.workspace({ ["a.py"] = "x = 1\n\ndef alpha():\n    pass\n", ["b.py"] = "def beta():\n    pass\n" })
vim.cmd.cd(ws) -- fzf-lua shows paths relative to the cwd
local function item(name, path, line)
  local it = H.item(name, path, line)
  it.uri = vim.uri_from_fname(ws .. "/" .. path)
  return it
end

local notes = H.capture_notify()
-- A command name that exists nowhere (CI puts the real `semcode` on PATH).
local MISSING = "semcode-not-installed-for-this-test"

--- The result lines fzf shows, top first ("path:line:col: name [Kind] preview").
local function fzf_results()
  local screen = H.fzf_screen() or ""
  local out = {}
  for line in screen:gmatch("[^\n]+") do
    local entry = line:match("^[> ]%s?(%S+:%d+:%d+: .-)%s*$")
    if entry then
      out[#out + 1] = entry
    end
  end
  return out
end

--- The windows of the current tab that are not floating (fzf's own are).
local function split_windows()
  return vim.tbl_filter(function(w)
    return vim.api.nvim_win_get_config(w).relative == ""
  end, vim.api.nvim_tabpage_list_wins(0))
end

local fake = H.fake_client()
require("semcode.client").get = function()
  return fake
end

--- Answer every request but the one for `query` with an empty list, as the server
--- answers each query fzf asks for (the pty may hand fzf a typed query in pieces).
local answered = {}
local function answer_others(query)
  for i, r in ipairs(fake.requests) do
    if not answered[i] and r.params.query ~= query then
      answered[i] = true
      fake:respond(i, nil, { searchId = "other" .. i, items = {}, rerankPending = false })
    end
  end
end

--- Open the live picker and type `query` into fzf; returns the fzf terminal channel.
local function open_and_type(query)
  vim.cmd.enew()
  return H.fzf_open_and_type(query, 15000)
end

H.test("auto backend picks fzf-lua when telescope is absent", function()
  H.eq("fzf", require("semcode.pickers").backend("auto"))
end)

H.test("live: the typed query is searched, the reranked list awaited and shown in order, <CR> jumps", function()
  local chan = open_and_type("alpha function")
  local index = H.wait(15000, function()
    answer_others("alpha function")
    for i, r in ipairs(fake.requests) do
      if r.params.query == "alpha function" then
        return i
      end
    end
  end, "a semcode/search for the typed query", function()
    return ("requests %s; fzf shows:\n%s"):format(vim.inspect(vim.tbl_map(function(r)
      return r.params.query
    end, fake.requests)), H.fzf_screen() or "(no fzf)")
  end)
  H.eq("semcode/search", fake.requests[index].method, "method")
  answered[index] = true
  fake:respond(index, nil, { searchId = "f1", rerankPending = true,
    items = { item("beta", "b.py", 0), item("alpha", "a.py", 2) } })
  vim.wait(300)
  H.eq({}, fzf_results(), "nothing shown while the reranked list is pending")
  require("semcode.search").on_refined(nil, { searchId = "f1", reranked = true,
    items = { item("alpha", "a.py", 2), item("beta", "b.py", 0) } })
  H.wait(15000, function()
    return #fzf_results() == 2
  end, "the reranked list in fzf")
  local shown = fzf_results()
  H.truthy(shown[1]:find("^a.py:3:5: alpha %[Function%]"), "first line: " .. shown[1])
  H.truthy(shown[2]:find("^b.py:1:5: beta %[Function%]"), "second line: " .. shown[2])
  vim.api.nvim_chan_send(chan, "\r")
  H.wait(15000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/a.py"
  end, "jump to a.py", function()
    return ("in %s; fzf shows:\n%s"):format(vim.api.nvim_buf_get_name(0), H.fzf_screen() or "(no fzf)")
  end)
  H.eq({ 3, 4 }, vim.api.nvim_win_get_cursor(0), "cursor on alpha")
  vim.cmd("stopinsert")
end)

H.test("live: fzf keeps the server's order (no re-sorting by the query), <C-v> opens a split", function()
  local n = #fake.requests
  vim.cmd.enew()
  local wins = #split_windows()
  -- A query that fuzzy-matches the second item better than the first.
  local chan = open_and_type("beta")
  H.wait(15000, function()
    answer_others("beta")
    return #fake.requests > n and fake.requests[#fake.requests].params.query == "beta"
  end, "request")
  answered[#fake.requests] = true
  fake:respond(#fake.requests, nil, { searchId = "f2", rerankPending = false,
    items = { item("alpha", "a.py", 2), item("beta", "b.py", 0) } })
  H.wait(15000, function()
    return #fzf_results() == 2
  end, "results")
  H.truthy(fzf_results()[1]:find("alpha", 1, true), "server's first stays first: " .. fzf_results()[1])
  vim.api.nvim_chan_send(chan, "\22") -- <C-v>
  H.wait(15000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/a.py"
  end, "jump to a.py")
  H.eq(wins + 1, #split_windows(), "a new split")
  vim.cmd("stopinsert")
end)

H.test("a fixed list (related) in fzf: order kept, <CR> jumps", function()
  vim.cmd.enew()
  require("semcode.pickers").list({ backend = "fzf", title = "related",
    items = { item("beta", "b.py", 0), item("alpha", "a.py", 2) } })
  H.wait(15000, function()
    return #fzf_results() == 2
  end, "list shown")
  H.truthy(fzf_results()[1]:find("beta", 1, true), "first: " .. fzf_results()[1])
  local _, chan = H.fzf_screen()
  vim.api.nvim_chan_send(chan, "\r")
  H.wait(15000, function()
    return vim.api.nvim_buf_get_name(0) == ws .. "/b.py"
  end, "jump to b.py")
  H.eq({ 1, 4 }, vim.api.nvim_win_get_cursor(0), "cursor on beta")
  vim.cmd("stopinsert")
end)

H.test("a missing server command is reported once, not per buffer", function()
  local config = require("semcode.config")
  local saved = config.options
  config.options = config.resolve({ cmd = { MISSING, "serve" } })
  for _, name in ipairs({ "a.py", "b.py" }) do
    vim.cmd.edit(ws .. "/" .. name)
    H.eq(nil, require("semcode.client").attach(0), "no client for " .. name)
  end
  config.options = saved
  local n = 0
  for _, m in ipairs(notes) do
    if m.msg:find("server command not found: " .. MISSING, 1, true) then
      n = n + 1
    end
  end
  H.eq(1, n, "one notice")
end)

H.finish()
