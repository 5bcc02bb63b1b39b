-- The dependency-free picker: vim.ui.input for the query, vim.ui.select for the list.
-- vim.ui.select cannot replace its items once open, so the search waits (up to
-- `rerank_wait_ms`) for the reranked list before showing it.
local search = require("semcode.search")

local M = {}

-- Notices ("semantic search is off: …") repeat on every search; say each one once.
local seen_notices = {}

local function show_notices(state)
  for _, notice in ipairs(state.notices or {}) do
    if not seen_notices[notice] then
      seen_notices[notice] = true
      vim.notify("semcode: " .. notice, vim.log.levels.INFO)
    end
  end
  if state.error then
    vim.notify("semcode: " .. state.error, vim.log.levels.ERROR)
  end
end

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
