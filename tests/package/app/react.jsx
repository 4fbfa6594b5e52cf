import { useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { Glimpse } from '@seed/glimpse';

function Classifier() {
  const [glimpse, setGlimpse] = useState(null);
  const [status, setStatus] = useState('loading the model…');
  const [top, setTop] = useState([]);
  const fail = (error) => setStatus(`${error.name}: ${error.message}`);
  useEffect(() => {
    const loading = Glimpse.load({ models: '/models/' });
    loading.then((g) => (setGlimpse(g), setStatus(`ready on ${g.backend}`)), fail);
    return () => loading.then((g) => g.dispose(), () => {});
  }, []);
  const pick = ({ target }) => {
    setStatus('classifying…');
    glimpse.classify(target.files[0]).then(({ top, ms }) => (setTop(top), setStatus(`classified in ${Math.round(ms)} ms`)), fail);
  };
  return (
    <>
      <input id="photo" type="file" accept="image/*" disabled={!glimpse} onChange={pick} />
      <p id="status">{status}</p>
      <ol id="top">{top.map(({ index, label, prob }) => <li key={index}>{label} ({(prob * 100).toFixed(1)}%)</li>)}</ol>
    </>
  );
}

createRoot(document.getElementById('root')).render(<Classifier />);
