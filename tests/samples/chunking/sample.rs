//! A tiny inventory.

use std::collections::HashMap;

pub const MAX_ITEMS: usize = 100;
static GREETING: &str = "hi";

/// One stock item.
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub qty: u32,
}

pub enum Category {
    Food,
    Tool,
}

pub trait Priced {
    fn price(&self) -> f64;
    fn discounted(&self) -> f64 {
        self.price() * 0.9
    }
}

impl Item {
    /// Creates an item.
    pub fn new(name: &str) -> Self {
        Item { name: name.to_string(), qty: 0 }
    }

    const UNIT: u32 = 1;
}

impl Priced for Item {
    fn price(&self) -> f64 {
        1.0
    }
}

pub mod store {
    use super::Item;

    pub fn restock(item: &mut Item, n: u32) {
        item.qty += n;
    }
}

type Index = HashMap<String, Item>;

macro_rules! item {
    ($n:expr) => {
        Item::new($n)
    };
}

fn main() {
    let _ = item!("apple");
}
