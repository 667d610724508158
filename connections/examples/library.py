"""Shared code for the example connection's connectors (importable as `library`)."""

import hashlib


def file_sha256(path, chunk_size=1024 * 1024):
    """Return the SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# The languages table both languages connectors read: (name, first appeared, designed by,
# paradigm), one partition per decade.
LANGUAGES = [
    ("Fortran", 1957, "John Backus", "imperative"),
    ("Lisp", 1958, "John McCarthy", "functional"),
    ("COBOL", 1959, "CODASYL", "imperative"),
    ("C", 1972, "Dennis Ritchie", "imperative"),
    ("Smalltalk", 1972, "Alan Kay", "object-oriented"),
    ("ML", 1973, "Robin Milner", "functional"),
    ("SQL", 1974, "Donald Chamberlin, Raymond Boyce", "declarative"),
    ("C++", 1985, "Bjarne Stroustrup", "multi-paradigm"),
    ("Erlang", 1986, "Joe Armstrong", "functional"),
    ("Perl", 1987, "Larry Wall", "multi-paradigm"),
    ("Haskell", 1990, "Haskell Committee", "functional"),
    ("Python", 1991, "Guido van Rossum", "multi-paradigm"),
    ("Java", 1995, "James Gosling", "object-oriented"),
    ("JavaScript", 1995, "Brendan Eich", "multi-paradigm"),
    ("Ruby", 1995, "Yukihiro Matsumoto", "object-oriented"),
    ("C#", 2000, "Anders Hejlsberg", "multi-paradigm"),
    ("Scala", 2004, "Martin Odersky", "multi-paradigm"),
    ("Go", 2009, "Robert Griesemer, Rob Pike, Ken Thompson", "imperative"),
    ("Rust", 2010, "Graydon Hoare", "multi-paradigm"),
    ("Kotlin", 2011, "JetBrains", "multi-paradigm"),
    ("Julia", 2012, "Jeff Bezanson, Stefan Karpinski, Viral Shah, Alan Edelman", "multi-paradigm"),
    ("Swift", 2014, "Chris Lattner", "multi-paradigm"),
]


def decade_of(year):
    return f"{year // 10 * 10}s"


def rows_of(decade):
    return [row for row in LANGUAGES if decade_of(row[1]) == decade]
