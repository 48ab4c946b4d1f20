"""What an installed wheel carries besides the library: the plugin sources and the
zipapp builder (as the subpackages `plugins` and `zipapp`), and `pycni-install`."""
