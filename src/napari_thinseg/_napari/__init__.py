"""The napari glue: reader, writer, sample data, layer helpers and the
widgets (:mod:`.widgets`). The only part of the package that imports napari
or Qt; everything here is a thin shell over the pipeline modules."""
