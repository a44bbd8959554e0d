// SPDX-License-Identifier: MIT

/// An iterator over the Fibonacci numbers that stops before overflowing `u64`.
pub struct Fibonacci {
    current: u64,
    next: Option<u64>,
}

impl Fibonacci {
    pub fn new() -> Self {
        Fibonacci { current: 0, next: Some(1) }
    }
}

impl Iterator for Fibonacci {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let next = self.next?;
        let value = self.current;
        self.current = next;
        self.next = value.checked_add(next);
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Fibonacci;

    #[test]
    fn first_ten() {
        let got: Vec<u64> = Fibonacci::new().take(10).collect();
        assert_eq!(got, vec![0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
    }
}
