-- Starting the server and talking to it.
--
-- One `semcode serve` per workspace root (vim.lsp.start reuses a client with the same
-- name and root). The helpers here hide the 0.10 → 0.11 switch from `client.request`
-- to `client:request` so the rest of the plugin calls one API.
local config = require("semcode.config")

local M = {}

M.name = "semcode"

local has_011 = vim.fn.has("nvim-0.11") == 1

--- Send a request; returns the request id (or nil when the client refused it).
---@param client vim.lsp.Client
---@param method string
---@param params table|nil
---@param handler fun(err: table|nil, result: any, ctx: table)
---@param bufnr integer|nil
---@return integer|nil
function M.request(client, method, params, handler, bufnr)
  local ok, id
  if has_011 then
    ok, id = client:request(method, params, handler, bufnr)
  else
    ok, id = client.request(method, params, handler, bufnr)
  end
  return ok and id or nil
end

---@param client vim.lsp.Client
---@param id integer
function M.cancel(client, id)
  if has_011 then
    client:cancel_request(id)
  else
    client.cancel_request(id)
  end
end

---@param client vim.lsp.Client
function M.notify(client, method, params)
  if has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

--- `workspace/executeCommand` with a callback.
function M.command(client, command, arguments, handler)
  return M.request(client, "workspace/executeCommand", { command = command, arguments = arguments or {} },
    handler)
end

--- Blocking request (for :checkhealth, which must produce its report synchronously).
---@return any result, table|nil err
function M.request_sync(client, method, params, timeout_ms)
  local resp, err
  if has_011 then
    resp, err = client:request_sync(method, params, timeout_ms)
  else
    resp, err = client.request_sync(method, params, timeout_ms)
  end
  if not resp then
    return nil, { message = err or "timeout" }
  end
  return resp.result, resp.err
end

--- Running semcode clients, optionally only those attached to `bufnr`.
---@return vim.lsp.Client[]
function M.clients(bufnr)
  return vim.lsp.get_clients({ name = M.name, bufnr = bufnr })
end

local function contains(root, path)
  if not root or not path then
    return false
  end
  root = root:gsub("/$", "")
  return path == root or path:sub(1, #root + 1) == root .. "/"
end

--- The client to search with: the one attached to the current buffer, else the one
--- whose root contains the cwd, else any. Searching from a picker or a dashboard buffer
--- (no file) must still work.
---@return vim.lsp.Client|nil
function M.get(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local attached = M.clients(bufnr)
  if #attached > 0 then
    return attached[1]
  end
  local all = M.clients()
  local cwd = vim.uv.cwd()
  for _, client in ipairs(all) do
    if contains(client.root_dir, cwd) then
      return client
    end
  end
  return all[1]
end

--- Whether a buffer is a normal file buffer semcode should attach to.
function M.should_attach(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return false
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  -- Skip unnamed buffers and URI-like names (fugitive://, oil://): not files on disk.
  if name == "" or name:match("^%a[%w+.-]*://") then
    return false
  end
  local fts = config.options.filetypes
  if fts and not vim.tbl_contains(fts, vim.bo[bufnr].filetype) then
    return false
  end
  return true
end

--- The workspace root for a buffer, or nil.
function M.find_root(bufnr)
  local root = vim.fs.root(bufnr, config.options.root_markers)
  if root then
    return root
  end
  if config.options.root_fallback == "cwd" then
    local cwd = vim.uv.cwd()
    -- Never fall back to $HOME or /: indexing a whole home directory is never intended.
    local home = vim.uv.os_homedir()
    if cwd and cwd ~= "/" and cwd ~= home and contains(cwd, vim.api.nvim_buf_get_name(bufnr)) then
      return cwd
    end
  end
  return nil
end

--- `t` as a JSON object for the wire. Lua cannot tell `{}` from an empty list, and
--- vim.json encodes an empty table as `[]`: the server wants an object of settings, so
--- "no settings" (`setup({})`, lazy.nvim's `opts = {}`) must go out as `{}`.
---@param t table|nil
---@return table
function M.json_object(t)
  if t == nil or (type(t) == "table" and next(t) == nil) then
    return vim.empty_dict()
  end
  return t
end

local handlers -- set lazily: search/status require this module

local function make_handlers()
  local search = require("semcode.search")
  local status = require("semcode.status")
  return {
    ["semcode/searchRefined"] = search.on_refined,
    ["semcode/status"] = status.on_status,
  }
end

--- Start (or reuse) the server for `bufnr`'s workspace and attach the buffer.
---@return integer|nil client_id
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not M.should_attach(bufnr) then
    return nil
  end
  local root = M.find_root(bufnr)
  if not root then
    return nil
  end
  local existing = M.clients(bufnr)
  if #existing > 0 then
    return existing[1].id
  end
  local cmd = config.server_cmd(root)
  if vim.fn.executable(cmd[1]) ~= 1 then
    -- Say it once, plainly, instead of an LSP spawn error for every buffer opened.
    vim.notify_once(("semcode: server command not found: %s (see :checkhealth semcode)"):format(cmd[1]),
      vim.log.levels.WARN)
    return nil
  end
  handlers = handlers or make_handlers()
  local opts = config.options
  return vim.lsp.start({
    name = M.name,
    cmd = cmd,
    cmd_env = opts.cmd_env,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fs.basename(root) } },
    init_options = M.json_object(opts.init_options),
    capabilities = opts.capabilities,
    handlers = handlers,
    on_attach = opts.on_attach,
  }, {
    bufnr = bufnr,
    -- Reuse a server whose workspace already contains this file, even when markers would
    -- pick a nested root (a vendored repo inside the workspace): one index, not two.
    reuse_client = function(client, conf)
      return client.name == conf.name and (client.root_dir == conf.root_dir
        or contains(client.root_dir, vim.api.nvim_buf_get_name(bufnr)))
    end,
  })
end

--- Send new settings to every running server (workspace/didChangeConfiguration).
function M.update_settings(settings)
  for _, client in ipairs(M.clients()) do
    M.notify(client, "workspace/didChangeConfiguration", { settings = { semcode = M.json_object(settings) } })
  end
end

return M
