// Package cache implements an LRU cache.
package cache

import (
	"errors"
	"sync"
)

const DefaultSize = 128

var (
	ErrMissing = errors.New("missing")
	hits       int
)

// Entry is one cached value.
type Entry struct {
	Key   string
	Value []byte
}

// Store is anything that can hold entries.
type Store interface {
	Get(key string) (*Entry, error)
}

// LRU is a least-recently-used cache.
type LRU struct {
	mu      sync.Mutex
	entries map[string]*Entry
}

// NewLRU creates an empty cache.
func NewLRU(size int) *LRU {
	return &LRU{entries: make(map[string]*Entry, size)}
}

// Get returns the entry for key.
func (c *LRU) Get(key string) (*Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		hits++
		return e, nil
	}
	return nil, ErrMissing
}

func (c LRU) Len() int { return len(c.entries) }

func (p *Pair[K, V]) Swap() {}

type Pair[K comparable, V any] struct {
	First  K
	Second V
}
