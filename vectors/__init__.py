"""The committed test vectors (package data): the golden/RTL contract. Format: README.md here."""
