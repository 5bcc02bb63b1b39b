-- A small test harness for `nvim --headless --clean -l <spec>.lua`: named tests,
-- assertions, polling, and a RESULT line that tests/run.sh adds up; plus access to the
-- real picker plugins vendored in ../shared/vendor/nvim (H.use_plugins).
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
vim.o.showmode = false -- no "-- INSERT --" in the test output
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

--- Poll `cond` (processing events) until it returns truthy; error after `ms`
--- (`detail()`, if given, adds what was seen instead).
function H.wait(ms, cond, what, detail)
  local value
  local ok = vim.wait(ms, function()
    value = cond()
    return value
  end, 20)
  if not ok then
    error(("timed out after %d ms waiting for %s%s"):format(ms, what or "condition",
      detail and (": " .. detail()) or ""), 2)
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

--- The folder of the vendored real picker plugins (telescope.nvim, plenary.nvim,
--- fzf-lua): $SEMCODE_NVIM_VENDOR, else <repo>/../shared/vendor/nvim (CI lays shared/
--- beside the clone), else the same beside the main checkout of a git worktree.
function H.vendor_dir()
  local candidates = { vim.env.SEMCODE_NVIM_VENDOR }
  candidates[#candidates + 1] = vim.fs.dirname(H.repo_root) .. "/shared/vendor/nvim"
  local git = vim.system({ "git", "-C", H.repo_root, "rev-parse", "--path-format=absolute", "--git-common-dir" },
    { text = true }):wait(5000)
  if git.code == 0 then
    local main = vim.fs.dirname(vim.trim(git.stdout)) -- <main checkout>/.git -> <main checkout>
    candidates[#candidates + 1] = vim.fs.dirname(main) .. "/shared/vendor/nvim"
  end
  for _, dir in ipairs(candidates) do
    if dir and dir ~= "" and vim.fn.isdirectory(dir .. "/telescope.nvim") == 1 then
      return dir
    end
  end
  error("the vendored Neovim plugins are not found (set SEMCODE_NVIM_VENDOR; tried "
    .. table.concat(vim.tbl_filter(function(d) return d ~= nil end, candidates), ", ") .. ")")
end

--- Put real, unmodified plugins from the vendor folder on the runtimepath, e.g.
--- H.use_plugins("plenary.nvim", "telescope.nvim"). Missing plugins are an error (the
--- specs that need them fail; they never skip).
function H.use_plugins(...)
  local vendor = H.vendor_dir()
  for _, name in ipairs({ ... }) do
    local path = vendor .. "/" .. name
    if vim.fn.isdirectory(path) ~= 1 then
      error("vendored plugin missing: " .. path)
    end
    vim.opt.runtimepath:append(path)
    -- Source its plugin/ files, as a plugin manager or :packadd would (-l runs after
    -- start-up, so Neovim does not).
    for _, file in ipairs(vim.fn.glob(path .. "/plugin/**/*.{vim,lua}", false, true)) do
      vim.cmd.source(vim.fn.fnameescape(file))
    end
  end
end

--- Type `keys` (<> notation) into a picker's prompt as a user would: through Neovim's
--- input, the prompt's Insert-mode mappings included. Keys typed with nvim_feedkeys'
--- "x" end Insert mode when they are done, so each call first lets pending keys run
--- (telescope queues its own `A`) and re-enters Insert mode at the end of the prompt.
function H.type(keys)
  vim.api.nvim_feedkeys("", "x", false)
  local insert = vim.api.nvim_get_mode().mode:sub(1, 1) == "i" and "" or "A"
  vim.api.nvim_feedkeys(insert .. vim.keycode(keys), "tx", false)
end

--- A real telescope picker's results as the user sees them, best first: the display
--- text of each shown line (the selection caret stripped).
function H.telescope_shown(picker)
  if not picker.results_bufnr or not vim.api.nvim_buf_is_valid(picker.results_bufnr) then
    return {}
  end
  local shown = {}
  for _, line in ipairs(vim.api.nvim_buf_get_lines(picker.results_bufnr, 0, -1, false)) do
    if vim.trim(line) ~= "" then
      shown[#shown + 1] = line:gsub("^> ", ""):gsub("^  ", "")
    end
  end
  if picker.sorting_strategy ~= "ascending" then -- descending: the best is at the bottom
    shown = vim.fn.reverse(shown)
  end
  return shown
end

--- The title a real telescope picker shows above its results.
function H.telescope_title(picker)
  local border = picker.results_border
  if not border or not border.bufnr or not vim.api.nvim_buf_is_valid(border.bufnr) then
    return ""
  end
  return table.concat(vim.api.nvim_buf_get_lines(border.bufnr, 0, -1, false), "\n")
end

--- The real fzf-lua window: its terminal buffer's text and its terminal channel.
function H.fzf_screen()
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_valid(buf) and vim.bo[buf].buftype == "terminal" and vim.bo[buf].filetype == "fzf" then
      return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n"), vim.bo[buf].channel, buf
    end
  end
end

--- Open semcode's live picker in the real fzf-lua and type `query` into fzf; returns
--- fzf's terminal channel (to send keys).
function H.fzf_open_and_type(query, timeout_ms)
  require("semcode").search({ backend = "fzf" })
  local chan = H.wait(timeout_ms, function()
    return select(2, H.fzf_screen())
  end, "fzf's terminal")
  H.wait(timeout_ms, function()
    return (H.fzf_screen()):find(">", 1, true)
  end, "fzf's prompt")
  vim.api.nvim_chan_send(chan, query)
  return chan
end

--- Wait until fzf lists `count` results; returns their symbol names, top first. `want`
--- (optional) is shown beside fzf's screen on a timeout.
function H.fzf_names(count, timeout_ms, want)
  local screen
  return H.wait(timeout_ms, function()
    local names = {}
    screen = H.fzf_screen() or ""
    for line in screen:gmatch("[^\n]+") do
      names[#names + 1] = line:match("^[> ]%s?%S+:%d+:%d+: (%S+) %[")
    end
    return #names == count and names
  end, "results in fzf", function()
    return ("want %s, fzf shows:\n%s"):format(vim.inspect(want), screen)
  end)
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
