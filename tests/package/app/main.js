// A consumer of the published package: load the classifier, classify the picked photo.
import { Glimpse } from '@seed/glimpse';

const status = document.getElementById('status');
const results = document.getElementById('top');
const backend = new URLSearchParams(location.search).get('backend') ?? 'auto';

const describe = (error) => `${error.name}: ${error.message}`;

try {
  const glimpse = await Glimpse.load({ models: '/models/', backend });
  status.textContent = `ready on ${glimpse.backend}`;
  document.getElementById('photo').addEventListener('change', async ({ target }) => {
    status.textContent = 'classifying…';
    try {
      const { top, ms } = await glimpse.classify(target.files[0]);
      results.replaceChildren(
        ...top.map((prediction) => {
          const item = document.createElement('li');
          item.dataset.index = prediction.index;
          item.textContent = `${prediction.label} (${(prediction.prob * 100).toFixed(1)}%)`;
          return item;
        }),
      );
      status.textContent = `classified in ${Math.round(ms)} ms`;
    } catch (error) {
      status.textContent = describe(error);
    }
  });
} catch (error) {
  status.textContent = describe(error);
}
