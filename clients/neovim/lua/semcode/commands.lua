-- :Semcode {search [query] | related | status | reindex[!] [full]}
local M = {}

M.subcommands = {
  search = function(args)
    require("semcode").search({ query = table.concat(args, " ") })
  end,
  related = function()
    require("semcode").related()
  end,
  status = function()
    require("semcode").show_status()
  end,
  reindex = function(args, bang)
    require("semcode").reindex(bang or args[1] == "full")
  end,
}

function M.run(cmd)
  require("semcode").ensure_setup()
  local args = vim.deepcopy(cmd.fargs)
  local sub = table.remove(args, 1) or "search"
  local fn = M.subcommands[sub]
  if not fn then
    vim.notify(("semcode: unknown subcommand %q (search, related, status, reindex)"):format(sub),
      vim.log.levels.ERROR)
    return
  end
  fn(args, cmd.bang)
end

function M.complete(arglead, cmdline)
  local words = vim.split(cmdline, "%s+", { trimempty = true })
  if #words > 2 or (#words == 2 and arglead == "") then
    if words[2] == "reindex" then
      return { "full" }
    end
    return {}
  end
  return vim.tbl_filter(function(name)
    return vim.startswith(name, arglead)
  end, vim.tbl_keys(M.subcommands))
end

--- Define :Semcode (idempotent: plugin/semcode.lua and setup() both call this, so the
--- command exists however the plugin was put on 'runtimepath').
function M.define()
  vim.api.nvim_create_user_command("Semcode", M.run, {
    nargs = "*",
    bang = true,
    desc = "semcode: search code by meaning (search, related, status, reindex)",
    complete = M.complete,
  })
end

return M
