import { fileURLToPath } from 'node:url';

/** A path inside the installed package (dist/src/pipeline/ is three levels below its root). */
const packageFile = (rel: string) => fileURLToPath(new URL(`../../../${rel}`, import.meta.url));

/** The shipped model and the bundled sample sections (see samples/isbi2012/README.md). */
export const SHIPPED_MODEL = packageFile('models/emseg-isbi');
/** The best of the paper's own networks, trained with emseg (docs/REPRODUCTION.md). */
export const PAPER_MODEL = packageFile('models/fakhry-isbi');
export const SAMPLE_IMAGES = packageFile('samples/isbi2012/images');
export const SAMPLE_LABELS = packageFile('samples/isbi2012/labels');

/** What `emseg demo` writes in its output folder (`emseg view` recognises the folder by them). */
export const DEMO_OUTPUTS = Object.freeze({
  maps: 'membranes.tif', mapPictures: 'membrane-maps', cells: 'cells.tif', cellPictures: 'cells', report: 'report.html',
});
