-- A small test harness for `nvim --headless --clean -l <spec>.lua`: no plenary/busted
-- (not installable here), just named tests, assertions, polling, and a RESULT line that
-- tests/run.sh adds up.
local H = {}

local counts = { passed = 0, failed = 0, skipped = 0 }

-- print() in `nvim -l` follows message semantics (newline before the next message);
-- write lines ourselves so run.sh can parse them.
local function out(s)
  io.stdout:write(s, "\n")
  io.stdout:flush()
end
H.out = out

H.plugin_dir = vim.env.SEMCODE_PLUGIN_DIR
  or vim.fs.dirname(vim.fs.dirname(vim.fs.normalize(debug.getinfo(1, "S").source:sub(2))))
H.repo_root = vim.env.SEMCODE_REPO_ROOT or vim.fs.dirname(vim.fs.dirname(H.plugin_dir))

vim.opt.runtimepath:prepend(H.plugin_dir)
vim.opt.swapfile = false
vim.cmd.runtime("plugin/semcode.lua")

function H.test(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    counts.passed = counts.passed + 1
    out("PASS " .. name)
  else
    counts.failed = counts.failed + 1
    out("FAIL " .. name .. "\n" .. tostring(err):gsub("\n", "\n    "))
  end
end

function H.skip(name, why)
  counts.skipped = counts.skipped + 1
  out(("SKIP %s (%s)"):format(name, why))
end

function H.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(("%s: expected %s, got %s"):format(what or "value", vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

function H.truthy(value, what)
  if not value then
    error((what or "value") .. ": expected truthy, got " .. vim.inspect(value), 2)
  end
  return value
end

--- Poll `cond` (processing events) until it returns truthy; error after `ms`.
function H.wait(ms, cond, what)
  local value
  local ok = vim.wait(ms, function()
    value = cond()
    return value
  end, 20)
  if not ok then
    error(("timed out after %d ms waiting for %s"):format(ms, what or "condition"), 2)
  end
  return value
end

--- Capture vim.notify calls.
function H.capture_notify()
  local messages = {}
  vim.notify = function(msg, level)
    messages[#messages + 1] = { msg = msg, level = level }
  end
  return messages
end

--- The server command (list) from $SEMCODE_SERVER_CMD, or nil.
function H.server_cmd()
  local cmd = vim.env.SEMCODE_SERVER_CMD
  if not cmd or cmd == "" then
    return nil
  end
  return vim.split(cmd, "%s+", { trimempty = true })
end

--- Write files into a fresh temp workspace (with a .git marker); returns its root.
function H.workspace(files)
  local root = vim.fs.normalize(vim.fn.tempname() .. "-ws")
  vim.fn.mkdir(root .. "/.git", "p")
  for path, text in pairs(files) do
    local full = root .. "/" .. path
    vim.fn.mkdir(vim.fs.dirname(full), "p")
    local f = assert(io.open(full, "w"))
    f:write(text)
    f:close()
  end
  return root
end

function H.finish()
  out(("RESULT %d passed, %d failed, %d skipped"):format(counts.passed, counts.failed, counts.skipped))
  -- Stop servers cleanly so they flush and exit before we do.
  for _, c in ipairs(vim.lsp.get_clients()) do
    if vim.fn.has("nvim-0.11") == 1 then c:stop() else c.stop() end
  end
  vim.wait(3000, function()
    return #vim.lsp.get_clients() == 0
  end, 50)
  os.exit(counts.failed == 0 and 0 or 1)
end

--- A fake LSP client recording requests/notifications; `respond(id, err, result)`
--- answers a request later, as a real client's handler would be called.
function H.fake_client()
  local fake = { id = 999, name = "semcode", offset_encoding = "utf-16", requests = {}, cancelled = {},
    notifications = {}, next_id = 0 }
  function fake:request(method, params, handler)
    self.next_id = self.next_id + 1
    self.requests[#self.requests + 1] = { id = self.next_id, method = method, params = params, handler = handler }
    return true, self.next_id
  end
  function fake:cancel_request(id)
    self.cancelled[#self.cancelled + 1] = id
  end
  function fake:notify(method, params)
    self.notifications[#self.notifications + 1] = { method = method, params = params }
    return true
  end
  function fake:is_stopped()
    return false
  end
  function fake:respond(index, err, result)
    local req = self.requests[index]
    req.handler(err, result, { client_id = self.id, method = req.method })
  end
  return fake
end

--- A SearchItem as the server would send it.
function H.item(name, path, line, extra)
  return vim.tbl_extend("force", {
    uri = vim.uri_from_fname("/ws/" .. path),
    path = path,
    workspaceFolder = "file:///ws",
    range = { start = { line = line, character = 0 }, ["end"] = { line = line + 3, character = 0 } },
    selectionRange = { start = { line = line, character = 4 }, ["end"] = { line = line, character = 4 + #name } },
    name = name,
    kind = 12,
    containerName = "",
    language = "python",
    preview = "def " .. name .. "():",
    score = 0.5,
  }, extra or {})
end

return H
