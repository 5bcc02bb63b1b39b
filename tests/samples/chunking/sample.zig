const std = @import("std");

pub const max_len = 64;

/// A fixed-size ring buffer.
pub const Ring = struct {
    items: [max_len]u8 = undefined,
    head: usize = 0,

    pub fn init() Ring {
        return .{};
    }

    pub fn push(self: *Ring, v: u8) void {
        self.items[self.head % max_len] = v;
        self.head += 1;
    }
};

const Color = enum { red, green };

const Value = union(enum) {
    int: i64,
    float: f64,
};

fn add(a: i32, b: i32) i32 {
    return a + b;
}

test "add" {
    try std.testing.expect(add(1, 2) == 3);
}

pub fn main() !void {
    std.debug.print("{d}\n", .{add(1, 2)});
}
