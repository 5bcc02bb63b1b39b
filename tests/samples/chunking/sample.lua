-- A simple stack module.
local Stack = {}
Stack.__index = Stack

local MAX = 100

--- Creates a stack.
function Stack.new()
  return setmetatable({ items = {} }, Stack)
end

function Stack:push(v)
  table.insert(self.items, v)
end

function Stack:pop()
  return table.remove(self.items)
end

local function helper(x)
  return x * 2
end

local trim = function(s)
  return (s:gsub("^%s+", ""))
end

function global_fn()
  return helper(1)
end

return Stack
