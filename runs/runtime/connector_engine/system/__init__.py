"""Operating-system plumbing: Linux calls, bubblewrap command lines, the wire format."""
