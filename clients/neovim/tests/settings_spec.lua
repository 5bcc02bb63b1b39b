-- The plugin with no settings at all, as most users start: `require("semcode").setup({})`
-- (lazy.nvim's `opts = {}` calls exactly that) must start the real server and search.
-- Lua's `{}` is also an empty list, and vim.json sends it as `[]`; the client must send
-- `initializationOptions` (and didChangeConfiguration settings) as a JSON object.
--
-- Nothing but setup({}): the default command `semcode serve` is found on $PATH (a
-- wrapper that runs $SEMCODE_SERVER_CMD), the index goes to $SEMCODE_CACHE_DIR (an
-- environment variable, not a setting) in this run's scratch folder.
local dir = vim.fs.dirname(debug.getinfo(1, "S").source:sub(2))
local H = dofile(dir .. "/helpers.lua")
local semcode = require("semcode")
local search = require("semcode.search")

local server = H.server_cmd()
local scratch = vim.env.SEMCODE_TEST_TMP or vim.fn.tempname()
local bin = scratch .. "/settings-bin"
vim.fn.mkdir(bin, "p")
local wrapper = bin .. "/semcode"
local f = assert(io.open(wrapper, "w"))
-- `semcode serve ARGS` -> `$SEMCODE_SERVER_CMD ARGS` (which may itself end in `serve`).
f:write('#!/bin/sh\n[ "$1" = serve ] && shift\nexec ' .. table.concat(vim.tbl_map(vim.fn.shellescape, server), " ")
  .. ' "$@"\n')
f:close()
vim.fn.setfperm(wrapper, "rwxr-xr-x")
vim.env.PATH = bin .. ":" .. vim.env.PATH
vim.env.SEMCODE_CACHE_DIR = scratch .. "/settings-cache"

local ws = H.workspace({
  ["billing/invoice.py"] = "def compute_invoice_total(lines, rate):\n    return sum(lines) * (1 + rate)\n",
  ["net/retry.py"] = "def retry_request(request, attempts=3):\n    return request\n",
})
local notes = H.capture_notify()

local function running()
  local c = require("semcode.client").get()
  return H.truthy(c and c.initialized and c, "an initialized client")
end

local function errors()
  local out = {}
  for _, n in ipairs(notes) do
    if n.level == vim.log.levels.ERROR then
      out[#out + 1] = n.msg
    end
  end
  return out
end

H.test("setup({}) starts the default `semcode serve` and sends {} as initializationOptions", function()
  H.truthy(semcode.setup({}), "setup({})")
  vim.cmd.edit(ws .. "/billing/invoice.py")
  local c = H.wait(30000, function()
    local c = require("semcode.client").get()
    return c and c.initialized and c
  end, "client initialized (a rejected `initialize` leaves it uninitialized)")
  H.eq({ "semcode", "serve" }, c.config.cmd, "default command")
  H.eq("{}", vim.json.encode(c.config.init_options), "initializationOptions on the wire")
  H.eq({}, errors(), "error notifications")
end)

H.test("a search works with no settings", function()
  running()
  local found
  H.wait(60000, function()
    local state
    search.run("compute invoice total", { wait_ms = 0 }, function(s)
      state = s
    end)
    vim.wait(5000, function()
      return state ~= nil
    end, 20)
    if state and not state.error and state.items[1] and state.items[1].name == "compute_invoice_total" then
      found = state
      return true
    end
    vim.wait(200)
    return false
  end, "search finds compute_invoice_total")
  H.eq("billing/invoice.py", found.items[1].path, "path")
end)

H.test("update_settings({}) sends an object: the server takes it without complaint", function()
  local c = running()
  local sent
  local notify = c.notify
  c.notify = function(self, method, params)
    if method == "workspace/didChangeConfiguration" then
      sent = vim.json.encode(params)
    end
    return notify(self, method, params)
  end
  semcode.update_settings({})
  c.notify = notify
  H.eq('{"settings":{"semcode":{}}}', sent, "didChangeConfiguration params")
  -- A request after the notification: its answer comes after any complaint about it.
  local status
  semcode.show_status(function(s)
    status = s
  end)
  H.wait(10000, function()
    return status ~= nil
  end, "status")
  vim.wait(300)
  H.eq({}, errors(), "error notifications")
end)

H.finish()
