-- Defines :Semcode only; nothing starts until setup() or the first :Semcode.
if vim.g.loaded_semcode then
  return
end
vim.g.loaded_semcode = true

if vim.fn.has("nvim-0.10") ~= 1 then
  vim.api.nvim_echo({ { "semcode: Neovim >= 0.10 is required", "WarningMsg" } }, true, {})
  return
end

require("semcode.commands").define()
