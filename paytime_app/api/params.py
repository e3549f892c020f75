"""Request parameters several API routers declare alike."""

from typing import Annotated

from fastapi import Header, Query

from paytime_app.services.paging import MAX_PAGE

IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=120)]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"1-based page number, at most {MAX_PAGE}")]
