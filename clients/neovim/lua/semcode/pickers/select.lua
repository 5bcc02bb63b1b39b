-- The dependency-free picker: vim.ui.input for the query, vim.ui.select for the list.
-- vim.ui.select cannot replace its items once open, so the search waits (up to
-- `rerank_wait_ms`) for the reranked list before showing it.
local search = require("semcode.search")

local M = {}

-- Notices repeat on every search; one reporter for the session says each one once.
local show_notices = require("semcode.pickers.notices").reporter()

--- Present `items`; on choice jump there.
function M.list(opts)
  local items = opts.items or {}
  if #items == 0 then
    vim.notify("semcode: no results", vim.log.levels.INFO)
    return
  end
  vim.ui.select(items, {
    prompt = opts.title or "semcode",
    kind = "semcode",
    format_item = search.format,
  }, function(choice)
    if choice then
      search.jump(choice, opts.jump or "edit")
    end
  end)
end

function M.search(opts)
  local function run(query)
    if not query or vim.trim(query) == "" then
      return
    end
    if #vim.api.nvim_list_uis() > 0 then
      vim.api.nvim_echo({ { "semcode: searching…" } }, false, {})
    end
    search.run(query, { params = opts.params }, function(state)
      show_notices(state)
      local title = ("semcode: %s%s"):format(query, state.reranked and "" or " (first stage)")
      M.list({ title = title, items = state.items, jump = opts.jump })
    end)
  end
  if opts.query and opts.query ~= "" then
    run(opts.query)
  else
    vim.ui.input({ prompt = "semcode search: " }, run)
  end
end

return M
