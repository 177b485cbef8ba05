"""The one table from error types to HTTP statuses."""

from shared.errors import InvalidInput, NotFound, Overloaded, Unavailable
from shared.web.errors import ERROR_TABLE, status_for


def test_one_table_maps_errors_to_statuses() -> None:
    assert status_for(InvalidInput("x"))[0] == 422
    assert status_for(NotFound("x"))[0] == 404
    assert status_for(Overloaded("x"))[0] == 429
    assert status_for(Unavailable("x"))[0] == 503

    class ModelMissing(NotFound):
        pass

    assert status_for(ModelMissing("x")) == ERROR_TABLE[NotFound]
