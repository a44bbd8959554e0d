// Package stack provides a small generic LIFO stack.
package stack

// Stack is a last-in, first-out collection; the zero value is an empty stack.
type Stack[T any] struct {
	items []T
}

// Push adds an item on top of the stack.
func (s *Stack[T]) Push(item T) {
	s.items = append(s.items, item)
}

// Pop removes and returns the top item; ok is false when the stack is empty.
func (s *Stack[T]) Pop() (item T, ok bool) {
	if len(s.items) == 0 {
		return item, false
	}
	last := len(s.items) - 1
	item = s.items[last]
	s.items = s.items[:last]
	return item, true
}

// Len reports how many items the stack holds.
func (s *Stack[T]) Len() int {
	return len(s.items)
}
