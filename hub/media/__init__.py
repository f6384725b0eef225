"""Every upload is decoded here, once, the same way for every tab.

- `image.py`: `open_image` / `read_image` (EXIF rotation, one 16-bit, float and alpha policy, one pixel cap).
- `audio.py`: `load_audio` (WAV with numpy, other formats through PyAV or ffmpeg; mono float32 at a given rate).
- `video.py`: `open_video` (PyAV container and stream, with the same sentences for unreadable files; the pixel cap).
- `containers.py`: what FFmpeg may read (the upload only: no playlists or scripts naming other files).
"""
