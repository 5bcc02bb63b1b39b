-- Which picker shows results: telescope when installed, else fzf-lua, else vim.ui
-- (which dressing.nvim, snacks.nvim or fzf-lua's register_ui_select may themselves
-- replace). One entry point either way.
local config = require("semcode.config")

local M = {}

local modules = {
  telescope = { module = "semcode.pickers.telescope", needs = "telescope" },
  fzf = { module = "semcode.pickers.fzf", needs = "fzf-lua" },
  select = { module = "semcode.pickers.select" },
}

local function available(name)
  local spec = modules[name]
  return spec and (spec.needs == nil or pcall(require, spec.needs))
end

--- The backend name that will be used ("telescope", "fzf" or "select").
---@param preferred string|nil
function M.backend(preferred)
  preferred = preferred or config.options.picker
  if preferred ~= "auto" then
    if available(preferred) then
      return preferred
    end
    vim.notify(("semcode: picker %q is not available, using vim.ui.select"):format(preferred),
      vim.log.levels.WARN)
    return "select"
  end
  for _, name in ipairs({ "telescope", "fzf" }) do
    if available(name) then
      return name
    end
  end
  return "select"
end

local function load(opts)
  return require(modules[M.backend(opts and opts.backend)].module)
end

--- Live search picker. opts: query (initial text), backend, params (search params).
function M.search(opts)
  return load(opts).search(opts or {})
end

--- A fixed list (e.g. related code). opts: title, items, backend.
function M.list(opts)
  return load(opts).list(opts)
end

return M
