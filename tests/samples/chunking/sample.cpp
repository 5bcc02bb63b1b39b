#include <string>
#include <vector>

namespace geo {

// A 2D point.
struct Point {
    double x = 0, y = 0;
};

class Polygon {
public:
    Polygon() = default;
    explicit Polygon(std::vector<Point> pts) : points_(std::move(pts)) {}
    ~Polygon() {}

    double area() const;

    std::size_t size() const { return points_.size(); }

private:
    std::vector<Point> points_;
};

double Polygon::area() const {
    double a = 0;
    for (std::size_t i = 0; i < points_.size(); ++i) {
        const Point &p = points_[i], &q = points_[(i + 1) % points_.size()];
        a += p.x * q.y - q.x * p.y;
    }
    return a / 2;
}

template <typename T>
T clamp(T v, T lo, T hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

enum class Shape { Triangle, Square };

}  // namespace geo

int main() {
    geo::Polygon p;
    return static_cast<int>(p.area());
}
