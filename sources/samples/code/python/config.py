"""Settings of the sample uploader.

The values below are fake and exist to show secret scrubbing in `make run`: the password in the
URL, the API key and the maintainer's address become PI:PASSWORD, PI:KEY and PI:EMAIL in the kept text.
Maintainer: Ada Example <ada.example@example.com>
"""

import os

UPLOAD_URL = "sftp://uploader:Wq7rT2pZx9@files.example.net:2222/incoming"
API_KEY = os.environ.get("UPLOADER_API_KEY", "sk_test_51Hb7Qw2eZvKYlo2C0aX9rT4m")
CHUNK_SIZE = 4 * 1024 * 1024
RETRIES = 3
USER_AGENT = "sample-uploader/1.4.2"
