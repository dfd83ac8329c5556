"""The spider's arguments: a source becomes a folder name, so only plain names are taken."""

from __future__ import annotations

import pytest

from scrapers.spiders.listings import ListingsSpider


def test_the_source_defaults_to_the_host_as_a_plain_name():
    assert ListingsSpider(start_url="http://127.0.0.1:8765/cars").source == "127_0_0_1"
    assert ListingsSpider(start_url="https://www.cars.example/used", source="cars_example").source == "cars_example"


@pytest.mark.parametrize("source", ["../../tmp/x", "a/b", "with space", "dots.are.not.names"])
def test_a_source_that_is_not_a_plain_name_is_refused(source):
    with pytest.raises(ValueError, match="a source is a plain name"):
        ListingsSpider(start_url="http://127.0.0.1:8765/cars", source=source)
