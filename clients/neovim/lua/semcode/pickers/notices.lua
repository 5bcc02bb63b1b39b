-- Search notices ("semantic search is off: …") come with every answer: a reporter shows
-- each one once (per reporter), and errors every time.
local M = {}

---@return fun(state: table)
function M.reporter()
  local seen = {}
  return function(state)
    for _, notice in ipairs(state.notices or {}) do
      if not seen[notice] then
        seen[notice] = true
        vim.notify("semcode: " .. notice, vim.log.levels.INFO)
      end
    end
    if state.error then
      vim.notify("semcode: " .. state.error, vim.log.levels.ERROR)
    end
  end
end

return M
