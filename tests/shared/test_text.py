from shared.text import normalize


def test_normalize_trims_collapses_and_composes() -> None:
    assert normalize("  where\tis \n my   parcel ") == "where is my parcel"
    assert normalize("cafe\u0301") == "caf\u00e9"
    assert normalize("Book A Table") == "Book A Table"
    assert normalize("Book A Table", lowercase=True) == "book a table"
