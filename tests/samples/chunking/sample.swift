import Foundation

let maxItems = 10

/// Something that can be drawn.
protocol Drawable {
    func draw() -> String
}

struct Point {
    var x: Double
    var y: Double
}

class Canvas: Drawable {
    private var shapes: [String] = []

    init(shapes: [String]) {
        self.shapes = shapes
    }

    func draw() -> String {
        return shapes.joined(separator: "\n")
    }

    deinit {
        shapes.removeAll()
    }
}

enum Direction {
    case north, south

    func flipped() -> Direction {
        return self == .north ? .south : .north
    }
}

extension Point {
    func length() -> Double {
        return (x * x + y * y).squareRoot()
    }
}

func render(_ items: [Drawable]) -> [String] {
    return items.map { $0.draw() }
}
