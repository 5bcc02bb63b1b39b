defmodule Inventory.Stock do
  @moduledoc """
  Tracks stock levels.
  """

  alias Inventory.Item

  @max 100

  defstruct items: %{}

  @doc "Adds an item."
  @spec add(map(), Item.t()) :: map()
  def add(stock, item) do
    Map.update(stock, item.sku, 1, &(&1 + 1))
  end

  def count(stock), do: map_size(stock)

  defp clamp(n) when n > @max, do: @max
  defp clamp(n), do: n

  defmacro with_stock(do: block) do
    quote do: unquote(block)
  end

  defprotocol Countable do
    def size(x)
  end
end

defmodule Inventory.Item do
  defstruct [:sku]
end
