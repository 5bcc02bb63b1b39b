-- :Telescope semcode            live search by meaning
-- :Telescope semcode related    code related to the symbol under the cursor
local has_telescope, telescope = pcall(require, "telescope")
if not has_telescope then
  error("semcode: :Telescope semcode needs nvim-telescope/telescope.nvim")
end

local ext_config = {}

return telescope.register_extension({
  setup = function(cfg)
    ext_config = cfg or {}
  end,
  exports = {
    semcode = function(opts)
      require("semcode").ensure_setup()
      return require("semcode.pickers.telescope").search(vim.tbl_extend("force", ext_config, opts or {}))
    end,
    related = function(opts)
      require("semcode").related(vim.tbl_extend("force", { backend = "telescope" }, ext_config, opts or {}))
    end,
  },
})
