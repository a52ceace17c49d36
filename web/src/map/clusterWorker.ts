// The Web Worker that keeps the cluster index off the page's main thread.
import { ClusterIndex, handleWorkerRequest, type WorkerRequest, type WorkerResponse } from './clusterEngine';

const scope = self as unknown as {
  onmessage: ((ev: MessageEvent<WorkerRequest>) => void) | null;
  postMessage: (message: WorkerResponse) => void;
};
const index = new ClusterIndex();

scope.onmessage = (ev) => {
  const response = handleWorkerRequest(index, ev.data);
  if (response !== null) scope.postMessage(response);
};
