-- The fzf-lua picker against a stand-in of fzf-lua's documented API (fzf_live(contents,
-- opts) where contents(args) returns function(cb) that emits lines then cb(nil);
-- opts.actions["default"|"ctrl-v"...](selected)). fzf-lua is not installable here.
local dir = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2))
local H = dofile(dir .. "/helpers.lua")

local calls = {}
package.loaded["fzf-lua"] = {
  fzf_live = function(contents, opts)
    calls[#calls + 1] = { kind = "live", contents = contents, opts = opts }
  end,
  fzf_exec = function(lines, opts)
    calls[#calls + 1] = { kind = "exec", lines = lines, opts = opts }
  end,
}

local ws = H.workspace({ ["a.py"] = "x = 1\n\ndef alpha():\n    pass\n", ["b.py"] = "def beta():\n    pass\n" })
local function item(name, path, line)
  local it = H.item(name, path, line)
  it.uri = vim.uri_from_fname(ws .. "/" .. path)
  return it
end

local notes = H.capture_notify()
-- A command name that exists nowhere (CI puts the real `semcode` on PATH).
local MISSING = "semcode-not-installed-for-this-test"

H.test("auto backend picks fzf-lua when telescope is absent", function()
  H.eq("fzf", require("semcode.pickers").backend("auto"))
end)

H.test("fzf_live: server order, reranked list awaited, <CR> jumps", function()
  local fake = H.fake_client()
  local client_mod = require("semcode.client")
  client_mod.get = function()
    return fake
  end
  require("semcode").search({})
  local call = calls[#calls]
  H.eq("live", call.kind, "fzf_live used")
  H.eq(true, call.opts.fzf_opts["--no-sort"], "--no-sort")
  local lines, done = {}, false
  call.contents({ "alpha function" })(function(line)
    if line == nil then
      done = true
    else
      lines[#lines + 1] = line
    end
  end)
  fake:respond(1, nil, { searchId = "f1", items = { item("beta", "b.py", 0), item("alpha", "a.py", 2) }, rerankPending = true })
  H.eq(false, done, "waits for the reranked list")
  require("semcode.search").on_refined(nil, { searchId = "f1", reranked = true,
    items = { item("alpha", "a.py", 2), item("beta", "b.py", 0) } })
  H.eq(true, done, "done after refinement")
  H.truthy(lines[1]:find("a.py:3:5: alpha", 1, true), "first line " .. lines[1])
  vim.cmd.enew()
  call.opts.actions["default"]({ lines[1] })
  H.eq({ ws .. "/a.py", 3, 4 }, { vim.api.nvim_buf_get_name(0), unpack(vim.api.nvim_win_get_cursor(0)) }, "landed")
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
