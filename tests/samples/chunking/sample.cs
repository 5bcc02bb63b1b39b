using System;
using System.Collections.Generic;

namespace Shop.Orders
{
    /// <summary>An order line.</summary>
    public record OrderLine(string Sku, int Quantity);

    public interface IOrderRepository
    {
        Order Find(Guid id);
    }

    public enum OrderState { New, Shipped }

    public struct Money
    {
        public decimal Amount;
    }

    [Serializable]
    public class Order
    {
        private readonly List<OrderLine> _lines = new();

        public Order(Guid id)
        {
            Id = id;
        }

        public Guid Id { get; }

        /// <summary>Adds a line.</summary>
        public void Add(OrderLine line)
        {
            _lines.Add(line);
        }

        public int Count() => _lines.Count;
    }
}
