from shared.errors import ERROR_TABLE, InvalidInput, NotFound, Overloaded, Unavailable, status_for


def test_one_table_maps_errors_to_statuses() -> None:
    assert status_for(InvalidInput("x"))[0] == 422
    assert status_for(NotFound("x"))[0] == 404
    assert status_for(Overloaded("x"))[0] == 429
    assert status_for(Unavailable("x"))[0] == 503

    class ModelMissing(NotFound):
        pass

    assert status_for(ModelMissing("x")) == ERROR_TABLE[NotFound]
