"""Writing an image: moving bytes onto a device, safely and fast."""
