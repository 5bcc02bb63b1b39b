# frozen_string_literal: true

require "json"

module Billing
  RATE = 0.2

  # A customer invoice.
  class Invoice
    attr_reader :lines

    def initialize(lines = [])
      @lines = lines
    end

    def total
      lines.sum { |l| l[:amount] } * (1 + RATE)
    end

    def self.parse(json)
      new(JSON.parse(json))
    end

    private

    def validate!
      raise ArgumentError if lines.empty?
    end
  end

  def self.version
    "1.0"
  end
end

def main
  puts Billing::Invoice.new.total
end
