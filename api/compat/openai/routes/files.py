"""Files (OpenAI's Files API): upload a batch input file, list, get, read and delete files. The
output and error files of batches are rendered from their jobs (api/compat/openai/rendering.py)
and can be read and got here, not listed or deleted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Blueprint, Response, jsonify, request, stream_with_context

from api.auth import current_key
from api.compat.openai.errors import OpenAIError
from api.compat.openai.rendering import file_object, outcome_line, parse_output_file_id, unix
from api.compat.openai.schemas import FileDeleted, FileListQuery, FileObject, ListPage
from api.request_scope import db, parse_query
from shared.errors import NotFoundError
from shared.models import FINAL_STATUSES, JobStatus, OpenAIBatch
from shared.repositories.batches import iter_finished
from shared.repositories.files import delete_file, get_file, list_files, store_file
from shared.repositories.openai_batches import get_openai_batch
from shared.settings import get_settings

bp = Blueprint("openai_files", __name__, url_prefix="/files")
# Room for the multipart framing and the purpose field around the largest file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


@bp.before_request
def _upload_limit() -> None:
    request.max_content_length = get_settings().max_file_bytes + MULTIPART_OVERHEAD_BYTES


def _json(model: FileObject | FileDeleted | ListPage[FileObject]) -> Response:
    return jsonify(model.model_dump(mode="json"))


@bp.post("")
def upload() -> Response:
    key = current_key()
    settings = get_settings()
    purpose = request.form.get("purpose")
    if purpose is None:
        raise OpenAIError(
            400, "purpose is required.", param="purpose", code="missing_required_parameter"
        )
    if purpose != "batch":
        raise OpenAIError(400, "purpose must be 'batch'.", param="purpose", code="invalid_value")
    upload = request.files.get("file")
    if upload is None:
        raise OpenAIError(400, "file is required.", param="file", code="missing_required_parameter")
    content = upload.read()
    if len(content) > settings.max_file_bytes:
        raise OpenAIError(
            413,
            f"The file is {len(content)} bytes; at most {settings.max_file_bytes} are accepted.",
            param="file",
            code="file_too_large",
        )
    lines = sum(1 for line in content.splitlines() if line.strip())
    if lines > settings.max_file_lines:
        raise OpenAIError(
            400,
            f"The file has {lines} requests; a batch file may hold at most "
            f"{settings.max_file_lines}.",
            param="file",
            code="too_many_lines",
        )
    session = db()
    row = store_file(session, key.user_id, purpose, upload.filename or "upload.jsonl", content)
    session.commit()
    return _json(file_object(row))


@bp.get("")
def list_own_files() -> Response:
    query = parse_query(FileListQuery)
    rows = list_files(db(), current_key().user_id, query.purpose, query.after, query.limit + 1)
    page = rows[: query.limit]
    return _json(
        ListPage[FileObject](
            data=[file_object(row) for row in page],
            first_id=page[0].id if page else None,
            last_id=page[-1].id if page else None,
            has_more=len(rows) > query.limit,
        )
    )


@dataclass(frozen=True)
class _Rendered:
    batch: OpenAIBatch
    errors: bool
    lines: Iterator[str]


def _rendered(file_id: str) -> _Rendered | None:
    """A batch's output or error file, or None when `file_id` names an uploaded file. A batch
    that is not final yet names neither (rendering.batch_object)."""
    parsed = parse_output_file_id(file_id)
    if parsed is None:
        return None
    openai_batch = get_openai_batch(db(), parsed[0], current_key().user_id)
    if openai_batch.batch_id is None or openai_batch.errors:
        raise NotFoundError(f"No file with id {file_id!r}.")
    return _Rendered(openai_batch, parsed[1], _lines(openai_batch.batch_id, not parsed[1]))


def _lines(batch_id: uuid.UUID, succeeded: bool) -> Iterator[str]:
    # Flask tears the request's scope down when the view returns and again when a stream ends,
    # so the stream takes its session from db() once it starts: the second teardown closes it.
    # The output file holds the succeeded jobs, the error file every other finished one.
    statuses = {JobStatus.SUCCEEDED} if succeeded else FINAL_STATUSES - {JobStatus.SUCCEEDED}
    for row in iter_finished(db(), batch_id, statuses):
        yield outcome_line(row)


@bp.get("/<file_id>")
def get_one(file_id: str) -> Response:
    rendered = _rendered(file_id)
    if rendered is None:
        return _json(
            file_object(get_file(db(), file_id, current_key().user_id, with_content=False))
        )
    return _json(
        FileObject(
            id=file_id,
            bytes=sum(len(line.encode()) for line in rendered.lines),
            created_at=unix(rendered.batch.created_at) or 0,
            filename=f"{rendered.batch.id}_{'error' if rendered.errors else 'output'}.jsonl",
            purpose="batch_output",
        )
    )


@bp.get("/<file_id>/content")
def content(file_id: str) -> Response:
    rendered = _rendered(file_id)
    if rendered is None:
        row = get_file(db(), file_id, current_key().user_id, with_content=True)
        return Response(row.content, mimetype="application/octet-stream")
    return Response(stream_with_context(rendered.lines), mimetype="application/jsonl")


@bp.delete("/<file_id>")
def delete(file_id: str) -> Response:
    if parse_output_file_id(file_id) is not None:
        raise OpenAIError(
            400,
            "A batch's output and error files are rendered from its jobs and cannot be deleted.",
            param="file_id",
            code="invalid_value",
        )
    session = db()
    delete_file(session, file_id, current_key().user_id)
    session.commit()
    return _json(FileDeleted(id=file_id))
