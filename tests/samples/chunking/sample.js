// Shopping cart utilities.
import { formatPrice } from "./format.js";

const TAX_RATE = 0.2;

/**
 * A cart of line items.
 */
export class Cart {
  constructor(owner) {
    this.owner = owner;
    this.items = [];
  }

  add(item, qty = 1) {
    this.items.push({ item, qty });
    return this;
  }

  get total() {
    return this.items.reduce((sum, l) => sum + l.item.price * l.qty, 0);
  }

  static empty() {
    return new Cart(null);
  }
}

// Price including tax.
export function withTax(amount) {
  return amount * (1 + TAX_RATE);
}

export const describeCart = (cart) => {
  return `${cart.owner}: ${formatPrice(cart.total)}`;
};

const sum = function (a, b) {
  return a + b;
};

function* countdown(n) {
  while (n > 0) yield n--;
}

export default Cart;
