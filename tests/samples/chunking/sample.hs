module Geometry
  ( Shape (..)
  , area
  ) where

import Data.List (sortOn)

-- | A shape.
data Shape
  = Circle Double
  | Rect Double Double
  deriving (Show, Eq)

newtype Name = Name String

type Area = Double

class HasArea a where
  areaOf :: a -> Area

instance HasArea Shape where
  areaOf = area

-- | Area of a shape.
area :: Shape -> Area
area (Circle r) = pi * r * r
area (Rect w h) = w * h

largest :: [Shape] -> Maybe Shape
largest [] = Nothing
largest xs = Just (last (sortOn area xs))

main :: IO ()
main = print (area (Circle 1))
