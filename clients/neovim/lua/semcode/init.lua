-- semcode for Neovim: find code by meaning.
--
--   require("semcode").setup({ init_options = { rerank = true } })
--   :Telescope semcode   :Semcode search [query]   :Semcode related   :Semcode status
--
-- This module is the public surface; the work lives in small modules: config (options),
-- client (server lifecycle, requests), search (live sessions, jumping), status
-- (progress, statusline), pickers/* (UI), health (:checkhealth semcode).
local config = require("semcode.config")
local client = require("semcode.client")

local M = {}

--- The plugin's version (it follows the server release it is tested with).
M.version = "0.2.0"

--- Configure and start attaching. Safe to call again (replaces the options and the
--- autocommands; running servers keep the settings they started with).
---@param opts semcode.Options|nil
---@return boolean ok
function M.setup(opts)
  local options, errors = config.resolve(opts)
  if #errors > 0 then
    vim.notify("semcode: invalid options:\n  " .. table.concat(errors, "\n  "), vim.log.levels.ERROR)
    return false
  end
  config.options = options
  config.did_setup = true
  require("semcode.commands").define()

  local status = require("semcode.status")
  local group = vim.api.nvim_create_augroup("semcode", { clear = true })
  -- FileType as well as BufRead: the filetype filter can only be judged once it is set.
  vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile", "FileType" }, {
    group = group,
    callback = function(ev)
      client.attach(ev.buf)
    end,
  })
  vim.api.nvim_create_autocmd("LspProgress", { group = group, callback = status.on_progress })
  vim.api.nvim_create_autocmd("LspDetach", {
    group = group,
    callback = function(ev)
      local c = vim.lsp.get_client_by_id(ev.data.client_id)
      if c and c.name == client.name and #vim.lsp.get_buffers_by_client_id(c.id) <= 1 then
        status.clear(c.id)
      end
    end,
  })
  -- Lazy loading (lazy.nvim `cmd`/`keys`) often runs setup after files are open.
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) then
      client.attach(buf)
    end
  end
  return true
end

--- Run setup with defaults unless the user already did (commands call this, so
--- `:Semcode` works from a bare `packadd`).
function M.ensure_setup()
  if not config.did_setup then
    M.setup({})
  end
end

--- Open the search picker. opts: query (initial text), backend ("telescope", "fzf",
--- "select"), params (extra semcode/search params: mode, languages, paths, kinds).
function M.search(opts)
  M.ensure_setup()
  return require("semcode.pickers").search(opts or {})
end

--- Code related to the symbol under the cursor, in the picker.
function M.related(opts)
  M.ensure_setup()
  opts = opts or {}
  require("semcode.search").related(opts, function(state)
    for _, notice in ipairs(state.notices or {}) do
      vim.notify("semcode: " .. notice, vim.log.levels.INFO)
    end
    if state.error then
      vim.notify("semcode: " .. state.error, vim.log.levels.ERROR)
      return
    end
    require("semcode.pickers").list({ title = "semcode: related", items = state.items, backend = opts.backend })
  end)
end

--- Statusline component ("" when no server runs).
---@param bufnr integer|nil
---@return string
function M.status(bufnr)
  return require("semcode.status").statusline(bufnr)
end

local function with_client(fn)
  local c = client.get()
  if not c then
    vim.notify("semcode: not running (open a file inside a workspace)", vim.log.levels.WARN)
    return
  end
  fn(c)
end

--- Show the server's status (`semcode.status`). cb(status) instead of a notification.
function M.show_status(cb)
  with_client(function(c)
    client.command(c, "semcode.status", {}, function(err, result)
      if err then
        vim.notify("semcode: status failed: " .. (err.message or "?"), vim.log.levels.ERROR)
      elseif cb then
        cb(result)
      else
        vim.notify(require("semcode.status").describe(result), vim.log.levels.INFO)
      end
    end)
  end)
end

--- Re-index the workspace (`full`: drop the index and rebuild; embeddings stay cached).
function M.reindex(full)
  with_client(function(c)
    local args = full and { { full = true } } or {}
    client.command(c, "semcode.reindex", args, function(err)
      if err then
        vim.notify("semcode: reindex failed: " .. (err.message or "?"), vim.log.levels.ERROR)
      else
        vim.notify("semcode: re-indexing" .. (full and " (full)" or ""), vim.log.levels.INFO)
      end
    end)
  end)
end

--- Change server settings at run time (workspace/didChangeConfiguration).
function M.update_settings(settings)
  local errors = config.validate(vim.tbl_extend("force", config.options, { init_options = settings }))
  if #errors > 0 then
    vim.notify("semcode: " .. table.concat(errors, "; "), vim.log.levels.ERROR)
    return
  end
  config.options.init_options = vim.tbl_extend("force", config.options.init_options, settings)
  client.update_settings(settings)
end

return M
