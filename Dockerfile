# One image for every OptiBid role; the Helm chart picks the role by its arguments
# (`optibid worker`, `optibid kpis`, `optibid project all`, `optibid api`, `optibid connect ...`).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv
WORKDIR /app

# dependencies first: they change less often than the code
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY schemas/ schemas/
COPY connectors/ connectors/
COPY streams/ streams/
COPY projections/ projections/
COPY api/ api/
COPY optibid/ optibid/
RUN uv sync --frozen --no-dev

# stream state (RocksDB) lives here; it is rebuilt from the changelog topics when empty
ENV OPTIBID_STATE_DIR=/var/lib/optibid OPTIBID_LOG_FORMAT=json PATH="/app/.venv/bin:$PATH"
RUN useradd --system --uid 10001 optibid && mkdir -p /var/lib/optibid && chown optibid /var/lib/optibid
USER optibid
ENTRYPOINT ["optibid"]
CMD ["--help"]
