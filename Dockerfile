# video_caption on a GPU machine: the project, ffmpeg and the Python stack.
# The torch wheel pinned in requirements.txt is a CUDA build that carries its own CUDA runtime,
# so a slim base image is enough; run with the NVIDIA container toolkit (--gpus all).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/video_caption
COPY requirements.txt requirements-dev.txt pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.txt
COPY video_caption ./video_caption
COPY stage_1_video_cut.sh stage_2_filter_data.sh stage_3_video_caption.sh ./
RUN pip install --no-cache-dir --no-deps -e .

# Data and models are bind-mounted: -v /data:/data -v ~/.cache/huggingface:/root/.cache/huggingface
ENV VIDEO_FOLDER=/data/videos OUTPUT_FOLDER=/data/output
CMD ["bash", "stage_1_video_cut.sh"]
