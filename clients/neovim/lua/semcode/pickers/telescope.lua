-- The telescope picker.
--
-- Telescope's stock pieces fight natural-language search: its generic sorter
-- fuzzy-matches the prompt against each entry and hides results whose text does not
-- contain the typed words (most semantic hits), and `finders.new_dynamic` blocks the
-- picker's loop per keystroke. So: a finder object of our own that starts a debounced,
-- superseding search and emits the latest list, a sorter that ranks by server order,
-- and `picker:refresh()` when a list (first stage, then reranked) arrives.
--
-- The finder/sorter/entry logic is plain Lua with no telescope dependency at module
-- load (telescope is optional); the tests drive it in the real telescope.nvim.
local search = require("semcode.search")

local M = {}

--- Last line (1-based) of an item's range: `range.end` is the start of the next line.
local function last_line(item)
  local e = item.range["end"]
  return e.character == 0 and math.max(e.line, item.range.start.line + 1) or e.line + 1
end

--- Display function: "name  Kind  path:line  preview" with highlight groups.
function M.make_display(entry)
  local item = entry.value
  local name = item.name ~= "" and item.name or "<chunk>"
  if item.containerName and item.containerName ~= "" then
    name = item.containerName .. "." .. name
  end
  local parts = {
    { name, "TelescopeResultsIdentifier" },
    { search.kind_label(item), "TelescopeResultsComment" },
    { ("%s:%d"):format(item.path or entry.filename, entry.lnum), "TelescopeResultsLineNr" },
    { vim.trim(item.preview or ""), "TelescopeResultsNormal" },
  }
  local text, highlights = {}, {}
  local col = 0
  for i, part in ipairs(parts) do
    local s = part[1]
    highlights[#highlights + 1] = { { col, col + #s }, part[2] }
    text[#text + 1] = s
    col = col + #s + (i < #parts and 2 or 0)
  end
  return table.concat(text, "  "), highlights
end

--- A telescope entry for a SearchItem at `rank` (1 = best, as the server ordered).
function M.make_entry(item, rank)
  local lnum, col = search.position(item)
  return {
    value = item,
    rank = rank,
    -- ordinal is required by telescope; our sorter ignores it for ranking.
    ordinal = (item.name or "") .. " " .. (item.path or ""),
    display = M.make_display,
    filename = search.filename(item),
    lnum = lnum,
    col = col + 1,
    -- grep_previewer highlights lnum..lnend: the whole symbol.
    lnend = last_line(item),
    text = item.preview,
  }
end

--- A sorter that keeps server order: score = rank (telescope: lower is better), never
--- filters. `Sorter` is telescope.sorters.Sorter (passed in to keep this module free of
--- a load-time telescope dependency).
function M.sorter(Sorter)
  Sorter = Sorter or require("telescope.sorters").Sorter
  return Sorter:new({
    discard = false,
    scoring_function = function(_, _, _, entry)
      return entry.rank
    end,
  })
end

---@class semcode.TelescopeFinder
local LiveFinder = {}
LiveFinder.__index = LiveFinder
-- Telescope calls finder(prompt, process_result, process_complete) from its loop.
LiveFinder.__call = function(self, ...)
  return self:_find(...)
end

--- A live finder. opts.on_update(state) runs after each new list (the picker refreshes).
function M.live_finder(opts)
  opts = opts or {}
  local self = setmetatable({ entries = {}, state = nil }, LiveFinder)
  self.session = search.session({
    client = opts.client,
    params = opts.params,
    debounce_ms = opts.debounce_ms,
    on_update = function(state)
      local entries = {}
      for i, item in ipairs(state.items) do
        entries[i] = M.make_entry(item, i)
      end
      self.entries, self.state = entries, state
      if opts.on_update then
        opts.on_update(state)
      end
    end,
  })
  return self
end

function LiveFinder:_find(prompt, process_result, process_complete)
  -- A changed prompt starts a (debounced) search; the same prompt (a refresh after a
  -- list arrived) only re-emits. Until the new list comes the previous one stays shown:
  -- less flicker while typing.
  self.session:set_query(prompt or "")
  for _, entry in ipairs(self.entries) do
    if process_result(entry) then
      return -- telescope asks to stop (picker closed or too many)
    end
  end
  process_complete()
end

--- Telescope calls close() when the picker closes: cancel what is in flight.
function LiveFinder:close()
  self.session:close()
end

local function title_for(state)
  if not state or state.query == "" then
    return "semcode"
  end
  if state.error then
    return "semcode: error"
  end
  local n = #state.items
  if state.pending then
    return ("semcode: %d results, reranking…"):format(n)
  end
  return ("semcode: %d results%s"):format(n, state.reranked and " (reranked)" or "")
end

local function attach_jump_mappings(prompt_bufnr)
  local actions = require("telescope.actions")
  local action_state = require("telescope.actions.state")
  local function jumper(how)
    return function()
      local entry = action_state.get_selected_entry()
      actions.close(prompt_bufnr)
      if entry then
        search.jump(entry.value, how)
      end
    end
  end
  -- Replace (not map) the select actions so users' own mappings of them keep working.
  actions.select_default:replace(jumper("edit"))
  actions.select_horizontal:replace(jumper("split"))
  actions.select_vertical:replace(jumper("vsplit"))
  actions.select_tab:replace(jumper("tab"))
  return true
end

--- `:Telescope semcode`: live search. opts: telescope picker opts + query, params.
function M.search(opts)
  opts = opts or {}
  local pickers = require("telescope.pickers")
  local conf = require("telescope.config").values
  local picker
  local show_notices = require("semcode.pickers.notices").reporter()
  local finder = M.live_finder({
    client = opts.client,
    params = opts.params,
    debounce_ms = opts.debounce_ms,
    on_update = vim.schedule_wrap(function(state)
      if not picker or not picker.prompt_bufnr or not vim.api.nvim_buf_is_valid(picker.prompt_bufnr) then
        return
      end
      show_notices(state)
      if picker.results_border and picker.results_border.change_title then
        pcall(picker.results_border.change_title, picker.results_border, title_for(state))
      end
      picker:refresh()
    end),
  })
  picker = pickers.new(opts, {
    prompt_title = "semcode: search code by meaning",
    results_title = "semcode",
    default_text = opts.query,
    finder = finder,
    sorter = M.sorter(),
    previewer = conf.grep_previewer(opts),
    attach_mappings = attach_jump_mappings,
  })
  picker:find()
  return picker
end

--- A fixed list (related code).
function M.list(opts)
  local pickers = require("telescope.pickers")
  local finders = require("telescope.finders")
  local conf = require("telescope.config").values
  local ranked = {}
  for i, item in ipairs(opts.items or {}) do
    ranked[i] = { item = item, rank = i }
  end
  pickers.new(opts, {
    prompt_title = opts.title or "semcode",
    finder = finders.new_table({
      results = ranked,
      entry_maker = function(r)
        return M.make_entry(r.item, r.rank)
      end,
    }),
    -- A fixed list may be filtered by typing: here telescope's fuzzy sorter is right.
    sorter = conf.generic_sorter(opts),
    previewer = conf.grep_previewer(opts),
    attach_mappings = attach_jump_mappings,
  }):find()
end

return M
