-- :checkhealth semcode — server found and its version, models, index state, picker.
local M = {}

local EXPECTED_PROTOCOL = 1

local health = vim.health

local function check_nvim()
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok("Neovim " .. tostring(vim.version()))
  else
    health.error("Neovim >= 0.10 is required")
  end
end

local function check_options()
  local config = require("semcode.config")
  if not config.did_setup then
    health.warn("setup() has not been called (defaults are used on the first :Semcode)",
      { 'require("semcode").setup({})' })
  end
  local errors = config.validate(config.options)
  if #errors == 0 then
    health.ok("options are valid")
  else
    for _, e in ipairs(errors) do
      health.error("option " .. e)
    end
  end
end

local function check_executable(cmd)
  local exe = cmd[1]
  if vim.fn.executable(exe) ~= 1 then
    health.error(("server command not found: %s"):format(exe), {
      "install the semcode server (Python >= 3.11) so `semcode` is on $PATH: "
        .. "`pipx install semcode-<version>-py3-none-any.whl` (or `uv tool install <wheel>`, "
        .. "`pip install <wheel>`); build the wheel in a semcode checkout with "
        .. "`python -m pip install build && python -m build` (README: Install without a checkout)",
      "from a checkout: `scripts/setup.sh`, then cmd = { \"<checkout>/.venv/bin/semcode\", \"serve\" }",
      'or set cmd = { "/path/to/semcode", "serve" } in setup()',
    })
    return
  end
  health.ok(("server command: %s (%s)"):format(table.concat(cmd, " "), vim.fn.exepath(exe)))
  if vim.fs.basename(exe):match("^semcode") then
    local ok, res = pcall(function()
      return vim.system({ exe, "--version" }, { text = true }):wait(5000)
    end)
    if ok and res and res.code == 0 then
      health.info("version: " .. vim.trim(res.stdout or ""))
    end
  end
end

local function check_client(c)
  local client = require("semcode.client")
  local info = c.server_info or {}
  health.ok(("server running (client %d, root %s)%s"):format(c.id, c.root_dir or "?",
    info.version and (": " .. (info.name or "semcode") .. " " .. info.version) or ""))
  local exp = (c.server_capabilities or {}).experimental
  local proto = type(exp) == "table" and type(exp.semcode) == "table" and exp.semcode.protocolVersion
  if proto == EXPECTED_PROTOCOL then
    health.ok("protocol version " .. proto)
  else
    health.warn(("protocol version %s, this plugin speaks %d"):format(tostring(proto), EXPECTED_PROTOCOL),
      { "update the plugin and the server together" })
  end

  local status, err = client.request_sync(c, "workspace/executeCommand",
    { command = "semcode.status", arguments = {} }, 5000)
  if not status then
    health.warn("semcode.status failed: " .. (err and err.message or "no answer"))
    return
  end
  health.info(("server %s, state: %s"):format(status.version or "?", status.state or "?"))
  for _, role in ipairs({ "embedder", "reranker" }) do
    local m = (status.models or {})[role]
    if m then
      local line = ("%s: %s%s%s%s%s"):format(role, m.state or "?", m.builtin and " built-in" or "",
        m.path and (" " .. m.path) or "",
        (m.message and m.message ~= "") and (" — " .. m.message) or "",
        m.quality and (" — " .. m.quality) or "")
      if m.state == "loaded" or m.state == "off" or m.state == "loading" or m.state == "not loaded" then
        health.ok(line)
      else
        health.warn(line)
      end
    end
  end
  for _, ws in ipairs(status.workspaces or {}) do
    health.info(("index %s: %s files, %s chunks, %s/%s embedded%s"):format(ws.root or "?",
      tostring(ws.files or 0), tostring(ws.chunks or 0), tostring(ws.embedded or 0),
      tostring((ws.embedded or 0) + (ws.pendingEmbeddings or 0)),
      ws.progress and ws.progress.message and (" (" .. ws.progress.message .. ")") or ""))
  end
  if status.state == "error" then
    health.error("server state: error")
  end
  local report = require("semcode.status").has_model_problem(status) and health.warn or health.info
  for _, line in ipairs(status.degraded or {}) do
    report("degraded: " .. line)
  end
end

local function check_picker()
  local pickers = require("semcode.pickers")
  local backend = pickers.backend()
  local names = { telescope = "telescope.nvim", fzf = "fzf-lua", select = "vim.ui.select (built in)" }
  health.ok("picker: " .. names[backend])
  if backend == "select" then
    health.info("install telescope.nvim or fzf-lua for live results while typing")
  elseif backend == "fzf" and vim.fn.executable("fzf") ~= 1 then
    health.error("fzf-lua is installed but the `fzf` program is not on $PATH",
      { "install fzf (e.g. `apt install fzf`, `brew install fzf`)" })
  end
end

function M.check()
  health.start("semcode: environment")
  check_nvim()
  check_options()
  health.start("semcode: server")
  local config = require("semcode.config")
  local clients = require("semcode.client").clients()
  check_executable(config.server_cmd(clients[1] and clients[1].root_dir or vim.uv.cwd()))
  if #clients == 0 then
    health.info("no server running: open a file inside a workspace (markers: "
      .. table.concat(config.options.root_markers, ", ") .. ")")
  end
  for _, c in ipairs(clients) do
    check_client(c)
  end
  health.start("semcode: picker")
  check_picker()
end

return M
