package com.example.shapes

import kotlin.math.PI

const val UNIT = 1.0

/** A closed shape. */
interface Shape {
    fun area(): Double
}

data class Circle(val radius: Double) : Shape {
    constructor(diameter: Int) : this(diameter / 2.0)

    override fun area(): Double = PI * radius * radius

    companion object {
        fun unit(): Circle = Circle(UNIT)
    }
}

enum class Color { RED, GREEN }

object Registry {
    private val shapes = mutableListOf<Shape>()

    fun register(shape: Shape) {
        shapes.add(shape)
    }
}

// Total area of all shapes.
fun totalArea(shapes: List<Shape>): Double {
    return shapes.sumOf { it.area() }
}

typealias Shapes = List<Shape>
