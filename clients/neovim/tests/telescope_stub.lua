-- A minimal stand-in for telescope.nvim, following its documented API (finders are
-- callables `finder(prompt, process_result, process_complete)` with `close()`;
-- `sorters.Sorter:new{scoring_function}` scores entries, lower is better, -1 filters;
-- `pickers.new(opts, defaults):find()/:refresh()`; `actions.select_*:replace(fn)`;
-- `actions.state.get_selected_entry()`; `register_extension{setup, exports}`).
-- telescope itself cannot be installed here (no GitHub access, not in Debian, no
-- luarocks), so the plugin's telescope code is exercised against this.
local S = { pickers = {} }

local Sorter = {}
Sorter.__index = Sorter
function Sorter:new(opts)
  return setmetatable(vim.tbl_extend("force", { discard = false }, opts or {}), self)
end
-- Mirrors telescope's Sorter:score for the non-discard path.
function Sorter:score(prompt, entry, cb_add, cb_filter)
  assert(entry and entry.ordinal, "entries need an ordinal")
  local score = self:scoring_function(prompt or "", entry.ordinal, entry, cb_add, cb_filter)
  if score == -1 then
    return cb_filter(entry)
  end
  return cb_add(score, entry)
end

-- What telescope's generic (fzy) sorter does to a natural-language prompt: entries whose
-- ordinal lacks the prompt's characters in order are filtered out.
local function fuzzy_sorter()
  return Sorter:new({
    scoring_function = function(_, prompt, line)
      local pos = 1
      for ch in prompt:lower():gmatch("%S") do
        pos = line:lower():find(ch, pos, true)
        if not pos then
          return -1
        end
        pos = pos + 1
      end
      return 1
    end,
  })
end

local Picker = {}
Picker.__index = Picker

function Picker:find()
  self.prompt_bufnr = vim.api.nvim_create_buf(false, true)
  self.results_border = { title = self.results_title, change_title = function(b, t) b.title = t end }
  self.prompt = self.default_text or ""
  if self.attach_mappings then
    self.attach_mappings(self.prompt_bufnr, function() end)
  end
  S.current = self
  self:refresh()
end

-- Like telescope's loop: run the finder for the prompt, score what it emits, keep the
-- results ordered by score (stable for ties), mark completion.
function Picker:refresh()
  local scored, seq = {}, 0
  self.completed = false
  self.finder(self.prompt, function(entry)
    self.sorter:score(self.prompt, entry, function(score, e)
      seq = seq + 1
      scored[#scored + 1] = { score = score, seq = seq, entry = e }
    end, function() end)
  end, function()
    self.completed = true
  end)
  table.sort(scored, function(a, b)
    if a.score ~= b.score then
      return a.score < b.score
    end
    return a.seq < b.seq
  end)
  self.results = vim.tbl_map(function(s)
    return s.entry
  end, scored)
  self.selected = self.results[1]
end

--- Test helper: the user types `text` into the prompt.
function Picker:type(text)
  self.prompt = text
  self:refresh()
end

function Picker:close()
  self.closed = true
  if vim.api.nvim_buf_is_valid(self.prompt_bufnr) then
    vim.api.nvim_buf_delete(self.prompt_bufnr, { force = true })
  end
  self.finder:close()
end

local function action(name)
  return {
    name = name,
    replace = function(self, fn)
      self.fn = fn
    end,
    __call = nil,
  }
end

local modules = {
  ["telescope.sorters"] = { Sorter = Sorter, get_generic_fuzzy_sorter = fuzzy_sorter },
  ["telescope.pickers"] = {
    new = function(opts, defaults)
      local p = setmetatable(vim.tbl_extend("force", defaults or {}, opts or {}), Picker)
      S.pickers[#S.pickers + 1] = p
      return p
    end,
  },
  ["telescope.finders"] = {
    new_table = function(t)
      local f = setmetatable({ results = t.results }, {
        __call = function(self, _, process_result, process_complete)
          for _, r in ipairs(self.results) do
            process_result(t.entry_maker(r))
          end
          process_complete()
        end,
      })
      f.close = function() end
      return f
    end,
  },
  ["telescope.config"] = {
    values = {
      grep_previewer = function()
        return { name = "grep_previewer" }
      end,
      generic_sorter = fuzzy_sorter,
    },
  },
  ["telescope.actions"] = {
    select_default = action("select_default"),
    select_horizontal = action("select_horizontal"),
    select_vertical = action("select_vertical"),
    select_tab = action("select_tab"),
    close = function()
      S.current:close()
    end,
  },
  ["telescope.actions.state"] = {
    get_selected_entry = function()
      return S.current.selected
    end,
  },
  ["telescope"] = {
    extensions = {},
    register_extension = function(ext)
      return ext
    end,
  },
}

for name, mod in pairs(modules) do
  package.loaded[name] = mod
end

S.modules = modules
S.fuzzy_sorter = fuzzy_sorter

--- Test helper: press <CR> (or another select action) in the current picker.
function S.press(which)
  modules["telescope.actions"][which or "select_default"].fn()
end

return S
